package inmemory

import (
	"bufio"
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

// bufferSize is how much of a response crosses the pipe at once: what a
// handler writes between flushes, up to this, is handed over in one
// piece rather than write by write (a watch event's frame header and body,
// a list's items), as net/http buffers what it writes to a connection.
const bufferSize = 32 << 10

var buffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferSize) }}

// responseWriter hands the handler's status and headers over once, at the
// first write or when the handler returns, and its body through the pipe.
// It is used by the handler's goroutine only, as net/http's.
type responseWriter struct {
	header http.Header
	body   *io.PipeWriter
	buf    *bufio.Writer // over body, from buffers; nil once the response ended

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
	if w.buf == nil {
		w.buf = buffers.Get().(*bufio.Writer)
		w.buf.Reset(w.body)
	}
	return w.buf.Write(p)
}

// Flush implements http.Flusher: what was written reaches the reader.
func (w *responseWriter) Flush() {
	if w.buf != nil {
		_ = w.buf.Flush() // a failed flush fails the handler's next write
	}
}

// finish ends a response whose handler returned.
func (w *responseWriter) finish() {
	w.WriteHeader(http.StatusOK)
	var err error
	if w.buf != nil {
		err = w.buf.Flush()
		w.release()
	}
	w.body.CloseWithError(err) // nil: a clean end
}

// abort ends a response whose handler panicked: the round trip fails when
// nothing was sent yet, else the body ends with the error.
func (w *responseWriter) abort(err error) {
	w.once.Do(func() {
		w.err = err
		close(w.started)
	})
	if w.buf != nil {
		w.release()
	}
	w.body.CloseWithError(err)
}

func (w *responseWriter) release() {
	w.buf.Reset(nil)
	buffers.Put(w.buf)
	w.buf = nil
}
