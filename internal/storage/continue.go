package storage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// continueToken is the upstream-compatible shape of a list continue token.
type continueToken struct {
	APIVersion string `json:"v"`
	RV         int64  `json:"rv"`
	Start      string `json:"start"`
}

// continueAfter is the token of the page that follows key, read at
// revision rev; prefix is the listed range's, which the token leaves out.
// The watch cache's first pages and etcd's pages make the same tokens.
func continueAfter(rev int64, key, prefix string) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", RV: rev, Start: strings.TrimPrefix(key, prefix) + "\x00"})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (*continueToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("continue key is not valid")
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil || t.APIVersion != "meta.k8s.io/v1" {
		return nil, errors.New("continue key is not valid")
	}
	return &t, nil
}
