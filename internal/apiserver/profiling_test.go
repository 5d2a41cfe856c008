package apiserver

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lotse/lotse/internal/pki"
)

func TestProfilingIsForAdministrators(t *testing.T) {
	for _, tc := range []struct {
		name      string
		profiling bool
		groups    []string
		path      string
		wantCode  int
		wantBody  string
	}{
		{"admin gets the index", true, []string{pki.AdminGroup}, "/debug/pprof/", http.StatusOK, "goroutine"},
		{"admin gets a profile", true, []string{pki.AdminGroup}, "/debug/pprof/goroutine?debug=1", http.StatusOK, "goroutine profile:"},
		{"others are forbidden", true, []string{"system:nodes"}, "/debug/pprof/", http.StatusForbidden, `cannot get path \"/debug/pprof/\"`},
		{"turned off", false, []string{pki.AdminGroup}, "/debug/pprof/", http.StatusNotFound, `"reason":"NotFound"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), discovery: &discovery{}, cfg: Config{
				Profiling: tc.profiling,
				Authenticator: func(*http.Request) (*User, bool) {
					return &User{Name: "someone", Groups: tc.groups}, true
				},
			}}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("GET %s: %d %s, want %d with %q", tc.path, rec.Code, rec.Body, tc.wantCode, tc.wantBody)
			}
		})
	}
}
