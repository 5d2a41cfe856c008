package join

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// tokenFormat is the bootstrap token format upstream uses: a public id
// and a secret, [a-z0-9]{6}.[a-z0-9]{16}.
var tokenFormat = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// Token is a bootstrap token.
type Token struct{ ID, Secret string }

func (t Token) String() string { return t.ID + "." + t.Secret }

// ParseToken checks a token's format.
func ParseToken(s string) (Token, error) {
	m := tokenFormat.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Token{}, errors.New("the token must look like abcdef.0123456789abcdef (the content of the server's DATA/node-token)")
	}
	return Token{ID: m[1], Secret: m[2]}, nil
}

// LoadOrCreateToken reads the token at path, creating it on first use.
func LoadOrCreateToken(path string) (Token, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		t, err := ParseToken(string(data))
		if err != nil {
			return Token{}, fmt.Errorf("%s: %w", path, err)
		}
		return t, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Token{}, err
	}
	t := Token{ID: randomString(6), Secret: randomString(16)}
	if err := os.WriteFile(path, []byte(t.String()+"\n"), 0o600); err != nil {
		return Token{}, err
	}
	return t, nil
}

func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	for i := range buf {
		buf[i] = alphabet[int(buf[i])%len(alphabet)]
	}
	return string(buf)
}
