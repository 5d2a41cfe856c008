// Package serviceaccount makes sure every active namespace has its
// "default" ServiceAccount, recreating it when it is deleted.
//
// Token requests for pods come with the security work.
package serviceaccount
