package inmemory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Transport serves each request with Handler in a goroutine of its own and
// streams the response back through a pipe, so that watches work as over
// a network: the body ends when the handler returns, and closing it ends
// the handler's request context.
type Transport struct {
	Handler http.Handler
	// TLS is what the handler sees as the request's connection state:
	// the client certificate an x509 authenticator reads, as if the TLS
	// handshake had verified it. Its caller vouches for it.
	TLS *tls.ConnectionState
	// RemoteAddr is the address the handler sees the request from.
	RemoteAddr string
}

// errHandlerPanicked ends a response whose handler panicked.
var errHandlerPanicked = errors.New("inmemory: handler panicked")

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The handler's context ends with the client's, when the response
	// body is closed, or when the handler returns.
	ctx, cancel := context.WithCancel(req.Context())
	in := req.Clone(ctx)
	in.TLS = t.TLS
	in.RemoteAddr = t.RemoteAddr
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	in.Proto, in.ProtoMajor, in.ProtoMinor = "HTTP/1.1", 1, 1
	if in.Body == nil {
		in.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &responseWriter{header: http.Header{}, body: pw, started: make(chan struct{})}
	// A client that gives up while reading gets its context's error, as
	// from net/http, and a handler blocked writing to it is released.
	stopAbort := context.AfterFunc(req.Context(), func() { pw.CloseWithError(req.Context().Err()) })
	go func() {
		defer cancel()
		defer stopAbort()
		defer func() {
			if p := recover(); p != nil {
				// As net/http's server, a panic ends this response
				// only (http.ErrAbortHandler included).
				w.abort(fmt.Errorf("%w: %v", errHandlerPanicked, p))
				return
			}
			w.finish()
		}()
		t.Handler.ServeHTTP(w, in)
	}()
	select {
	case <-w.started:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	if w.err != nil {
		pr.Close()
		cancel()
		return nil, w.err
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          &body{PipeReader: pr, cancel: cancel},
		ContentLength: -1,
		Request:       req,
	}, nil
}

// body is the response body; closing it ends the handler's context, as a
// client closing a watch's connection would.
type body struct {
	*io.PipeReader
	cancel func()
}

func (b *body) Close() error {
	b.cancel()
	return b.PipeReader.Close()
}

// responseWriter hands the handler's status and headers over once, at the
// first write or when the handler returns, and its body through the pipe.
type responseWriter struct {
	header http.Header
	body   *io.PipeWriter

	once    sync.Once
	started chan struct{} // closed once status and sent (or err) are set
	status  int
	sent    http.Header // the header as of WriteHeader
	err     error       // set instead of status when no response can be made
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status, w.sent = code, w.header.Clone()
		close(w.started)
	})
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush implements http.Flusher; every Write already reaches the reader.
func (w *responseWriter) Flush() {}

// finish ends a response whose handler returned.
func (w *responseWriter) finish() {
	w.WriteHeader(http.StatusOK)
	w.body.Close()
}

// abort ends a response whose handler panicked: the round trip fails when
// nothing was sent yet, else the body ends with the error.
func (w *responseWriter) abort(err error) {
	w.once.Do(func() {
		w.err = err
		close(w.started)
	})
	w.body.CloseWithError(err)
}
