// Package lint holds tests that check house rules across the tree, such as
// every package having a doc comment.
//
// It has no code of its own.
package lint
