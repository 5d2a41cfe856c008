package inmemory

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, rt http.RoundTripper, ctx context.Context, url string, body io.Reader) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return rt.RoundTrip(req)
}

func TestRequestAndResponse(t *testing.T) {
	state := &tls.ConnectionState{HandshakeComplete: true}
	var seen *http.Request
	var seenBody string
	rt := &Transport{TLS: state, RemoteAddr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		b, _ := io.ReadAll(r.Body)
		seenBody = string(b)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		w.Header().Set("X-After", "ignored") // too late, as over a network
		io.WriteString(w, "made")
	})}
	resp, err := get(t, rt, context.Background(), "https://example:6443/api/v1/pods?limit=5", strings.NewReader("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || string(b) != "made" || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-After") != "" {
		t.Fatalf("response %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if seen.TLS != state || seen.RemoteAddr != "127.0.0.1:0" || seen.RequestURI != "/api/v1/pods?limit=5" ||
		seen.Method != http.MethodPost || seen.URL.Query().Get("limit") != "5" || seenBody != "in" {
		t.Fatalf("handler saw TLS %v, from %q, %s %q, body %q", seen.TLS, seen.RemoteAddr, seen.Method, seen.RequestURI, seenBody)
	}
}

func TestHandlerThatWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    int
	}{
		{"nothing", func(http.ResponseWriter, *http.Request) {}, http.StatusOK},
		{"status only", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := get(t, &Transport{Handler: tc.handler}, context.Background(), "https://x/", nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != tc.want || len(b) != 0 {
				t.Fatalf("got %d %q %v, want %d and no body", resp.StatusCode, b, err, tc.want)
			}
		})
	}
}

// A watch: the client reads each event while the handler still runs, and
// closing the body ends the handler's context.
func TestStreamingAndClose(t *testing.T) {
	next := make(chan struct{})
	ended := make(chan error, 1)
	rt := &Transport{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; ; i++ {
			if _, err := io.WriteString(w, "event\n"); err != nil {
				ended <- err
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				ended <- r.Context().Err()
				return
			}
		}
	})}
	resp, err := get(t, rt, context.Background(), "https://x/watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	for i := 0; i < 3; i++ {
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "event\n" {
			t.Fatalf("event %d: %q %v", i, buf, err)
		}
		next <- struct{}{}
	}
	resp.Body.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("handler ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing the body did not end the handler")
	}
}

func TestClientGivesUpBeforeTheAnswer(t *testing.T) {
	ended := make(chan struct{})
	rt := &Transport{Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(ended)
	})}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := get(t, rt, ctx, "https://x/", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("round trip: %v, want the deadline", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end with the client's")
	}
}

func TestHandlerPanics(t *testing.T) {
	before := &Transport{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })}
	if _, err := get(t, before, context.Background(), "https://x/", nil); !errors.Is(err, errHandlerPanicked) {
		t.Fatalf("panic before answering: %v, want a failed round trip", err)
	}
	after := &Transport{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		io.WriteString(w, "lost") // unflushed at the panic, as over a network
		panic("boom")
	})}
	resp, err := get(t, after, context.Background(), "https://x/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); !errors.Is(err, errHandlerPanicked) || string(b) != "partial" {
		t.Fatalf("panic while answering: read %q, %v; want the partial body, then the error", b, err)
	}
}

// A client that gives up while reading gets its context's error, as from
// net/http, and the handler, blocked writing to nobody, is released.
func TestClientGivesUpWhileReading(t *testing.T) {
	released := make(chan struct{})
	rt := &Transport{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		defer close(released)
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		// More than the buffer holds: blocks, as the client stops reading.
		w.Write(make([]byte, 2*bufferSize))
	})}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := get(t, rt, ctx, "https://x/", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler stayed blocked writing to a client that gave up")
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading after the client gave up: %v, want context.Canceled", err)
	}
}
