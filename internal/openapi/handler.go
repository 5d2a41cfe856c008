package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"

	"github.com/lotse/lotse/internal/apiserver/registry"
)

// Media types. Clients ask for protobuf with the "@v1.0" spelling; upstream
// answers with the ".v1.0" one and accepts both.
const (
	mimeJSON          = "application/json"
	mimeV2Proto       = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mimeV2ProtoLegacy = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mimeV3Proto       = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
	mimeV3ProtoLegacy = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
)

// Documents holds the rendered documents; build once at start-up.
type Documents struct {
	reg     *registry.Registry
	version string

	once    sync.Once
	err     error
	v2      *document
	v3      map[string]*document // by index key: "api/v1", "apis/apps/v1"
	v3Index *document
}

// document is one rendered document. Only compressed bytes are kept: the
// JSON of all documents is several megabytes, its gzip a tenth of that,
// and nearly every client (client-go included) accepts gzip.
type document struct {
	etag     string // upstream's: hex SHA-512 of the JSON
	modified time.Time
	json     []byte // gzip-compressed

	// toProto parses the JSON and marshals the gnostic protobuf message;
	// nil for documents served only as JSON.
	toProto   func([]byte) (proto.Message, error)
	protoOnce sync.Once
	proto     []byte // gzip-compressed
	protoErr  error
}

// Build prepares the documents of the kinds in reg; version is the server
// version written into each document's info. Rendering itself waits for
// the first request (or Render), so start-up does not pay for it.
func Build(reg *registry.Registry, version string) (*Documents, error) {
	if reg == nil || len(reg.Kinds()) == 0 {
		return nil, errors.New("openapi: no kinds to describe")
	}
	return &Documents{reg: reg, version: version}, nil
}

// Render renders every JSON document now if that has not happened yet and
// reports the first error. Serving calls it on demand.
func (d *Documents) Render() error {
	d.once.Do(func() {
		d.err = d.render()
		// Rendering allocates tens of MB that are garbage once the
		// compressed documents exist; hand them back to the OS now rather
		// than carry them in the server's idle footprint.
		debug.FreeOSMemory()
	})
	return d.err
}

func (d *Documents) render() error {
	s := collect(d.reg)
	now := time.Now()

	raw, err := s.v2JSON(d.version)
	if err != nil {
		return fmt.Errorf("openapi: rendering v2: %w", err)
	}
	d.v2 = newDocument(raw, now, func(b []byte) (proto.Message, error) { return openapi_v2.ParseDocument(b) })

	d.v3 = make(map[string]*document, len(s.gvs))
	type entry struct {
		ServerRelativeURL string `json:"serverRelativeURL"`
	}
	index := struct {
		Paths map[string]entry `json:"paths"`
	}{Paths: map[string]entry{}}
	for _, gv := range s.gvs {
		raw, err := s.v3JSON(gv, d.version)
		if err != nil {
			return fmt.Errorf("openapi: rendering v3 %s: %w", gv, err)
		}
		key := gvKey(gv)
		doc := newDocument(raw, now, func(b []byte) (proto.Message, error) { return openapi_v3.ParseDocument(b) })
		d.v3[key] = doc
		index.Paths[key] = entry{ServerRelativeURL: v3URL(key, doc.etag)}
	}
	raw, err = json.Marshal(index)
	if err != nil {
		return fmt.Errorf("openapi: rendering v3 index: %w", err)
	}
	d.v3Index = newDocument(raw, now, nil)
	return nil
}

func newDocument(raw []byte, modified time.Time, toProto func([]byte) (proto.Message, error)) *document {
	return &document{etag: fmt.Sprintf("%X", sha512.Sum512(raw)), modified: modified, json: compress(raw), toProto: toProto}
}

// v3URL is the index entry of one group version; the hash lets clients
// cache the document for as long as it does not change.
func v3URL(key, etag string) string {
	return "/openapi/v3/" + key + "?" + url.Values{"hash": {etag}}.Encode()
}

// protobuf returns the compressed protobuf form, made on first use: only
// kubectl's v2 and some v3 consumers want it.
func (doc *document) protobuf() ([]byte, error) {
	doc.protoOnce.Do(func() {
		raw, err := decompress(doc.json)
		if err != nil {
			doc.protoErr = err
			return
		}
		msg, err := doc.toProto(raw)
		if err != nil {
			doc.protoErr = fmt.Errorf("openapi: parsing for protobuf: %w", err)
			return
		}
		pb, err := proto.Marshal(msg)
		if err != nil {
			doc.protoErr = fmt.Errorf("openapi: marshaling protobuf: %w", err)
			return
		}
		doc.proto = compress(pb)
	})
	return doc.proto, doc.protoErr
}

// ServeHTTP serves /openapi/v2, /openapi/v3 and /openapi/v3/<path> with content
// negotiation (JSON default, protobuf when asked), ETag and caching headers like upstream.
func (d *Documents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := d.Render(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/openapi/v2":
		d.serveNegotiated(w, r, d.v2, mimeV2Proto, mimeV2ProtoLegacy)
	case p == "/openapi/v3" || p == "/openapi/v3/":
		// The index is JSON whatever the client asks for, as upstream.
		serve(w, r, d.v3Index, mimeJSON, d.v3Index.json)
	case strings.HasPrefix(p, "/openapi/v3/"):
		key := strings.TrimPrefix(p, "/openapi/v3/")
		doc, ok := d.v3[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if hash := r.URL.Query().Get("hash"); hash != "" {
			if hash != doc.etag {
				// A client holding an old index: send it to the current document.
				http.Redirect(w, r, v3URL(key, doc.etag), http.StatusMovedPermanently)
				return
			}
			// The URL names this exact content, so it can be cached forever.
			w.Header().Set("Cache-Control", "public, immutable")
			w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
		}
		d.serveNegotiated(w, r, doc, mimeV3Proto, mimeV3ProtoLegacy)
	default:
		http.NotFound(w, r)
	}
}

// serveNegotiated serves doc as JSON or protobuf, whichever the Accept
// header prefers, or 406 when it allows neither.
func (d *Documents) serveNegotiated(w http.ResponseWriter, r *http.Request, doc *document, protoType, protoLegacy string) {
	w.Header().Add("Vary", "Accept")
	switch negotiate(r.Header.Get("Accept"), protoType, protoLegacy) {
	case mimeJSON:
		serve(w, r, doc, mimeJSON, doc.json)
	case protoType:
		pb, err := doc.protobuf()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		serve(w, r, doc, protoType, pb)
	default:
		http.Error(w, "openapi: acceptable types are "+mimeJSON+" and "+protoType, http.StatusNotAcceptable)
	}
}

// negotiate picks the representation for an Accept header: mimeJSON,
// protoType or "" for none. Clauses are tried by descending quality, ties
// in header order; JSON wins wildcards.
func negotiate(accept, protoType, protoLegacy string) string {
	if strings.TrimSpace(accept) == "" {
		return mimeJSON
	}
	type clause struct {
		typ string
		q   float64
	}
	var clauses []clause
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		c := clause{typ: strings.ToLower(strings.TrimSpace(fields[0])), q: 1}
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok && strings.TrimSpace(k) == "q" {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					c.q = q
				}
			}
		}
		if c.q > 0 && c.typ != "" {
			clauses = append(clauses, c)
		}
	}
	// Stable insertion sort by quality: headers are short.
	for i := 1; i < len(clauses); i++ {
		for j := i; j > 0 && clauses[j].q > clauses[j-1].q; j-- {
			clauses[j], clauses[j-1] = clauses[j-1], clauses[j]
		}
	}
	for _, c := range clauses {
		switch c.typ {
		case mimeJSON, "application/*", "*/*":
			return mimeJSON
		case protoType, protoLegacy:
			return protoType
		}
	}
	return ""
}

// serve writes one representation with its ETag, compressed when the
// client takes gzip. http.ServeContent answers If-None-Match and
// If-Modified-Since with 304.
func serve(w http.ResponseWriter, r *http.Request, doc *document, contentType string, gz []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Etag", strconv.Quote(doc.etag))
	h.Add("Vary", "Accept-Encoding")
	body := gz
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
	} else {
		raw, err := decompress(gz)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body = raw
	}
	http.ServeContent(w, r, "", doc.modified, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		if q == "q=0" || strings.HasPrefix(q, "q=0.0") && strings.Trim(q[len("q=0."):], "0") == "" {
			return false
		}
		return true
	}
	return false
}

func compress(raw []byte) []byte {
	var buf bytes.Buffer
	// BestSpeed: rendering runs on a client's first request, and the
	// output is only ~15% larger than at the default level.
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(raw) // writes to a bytes.Buffer do not fail
	zw.Close()
	return buf.Bytes()
}

func decompress(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
