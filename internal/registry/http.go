package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route is a parsed /v2/<name>/<kind>/<arg> request path.
type route struct {
	name string // as in the URL
	ns   string // containerd's mirror namespace (?ns=docker.io), or ""
	repo string // the repository addressed: ns/name, or name
	kind string // "manifests", "blobs", "uploads" or "tags"
	arg  string // tag or digest, digest, upload id, or ""
}

// ServeHTTP serves the distribution API. It expects the full request path
// (/v2/...), so mount it at /v2/ without stripping the prefix. Requests are
// not authenticated here; the caller puts the handler behind its own auth.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	path, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok && req.URL.Path != "/v2" {
		writeError(w, newError(http.StatusNotFound, "NOT_FOUND", "no such endpoint %s", req.URL.Path))
		return
	}
	var err error
	switch {
	case path == "":
		err = r.serveBase(w, req)
	case path == "_catalog":
		err = r.serveCatalog(w, req)
	default:
		var rt route
		if rt, err = parseRoute(path, req.URL.Query().Get("ns")); err != nil {
			break
		}
		switch rt.kind {
		case "manifests":
			err = r.serveManifest(w, req, rt)
		case "blobs":
			err = r.serveBlob(w, req, rt)
		case "uploads":
			err = r.serveUpload(w, req, rt)
		case "tags":
			err = r.serveTags(w, req, rt)
		}
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			slog.Error("registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
			e = newError(http.StatusInternalServerError, "UNKNOWN", "%v", err)
		}
		writeError(w, e)
	}
}

// parseRoute splits a path after /v2/. Repository names may contain any of
// the keywords, so each is looked up from the end.
func parseRoute(path, ns string) (route, error) {
	rt := route{ns: ns}
	last := func(sep string) (string, string, bool) {
		i := strings.LastIndex(path, sep)
		if i <= 0 || strings.Contains(path[i+len(sep):], "/") {
			return "", "", false
		}
		return path[:i], path[i+len(sep):], true
	}
	if name, rest, ok := last("/blobs/uploads"); ok && rest == "" {
		rt.name, rt.kind = name, "uploads" // POST .../blobs/uploads (no slash)
	} else if name, id, ok := last("/blobs/uploads/"); ok {
		rt.name, rt.kind, rt.arg = name, "uploads", id
	} else if name, rest, ok := last("/tags/list"); ok && rest == "" {
		rt.name, rt.kind = name, "tags"
	} else if name, ref, ok := last("/manifests/"); ok && ref != "" {
		rt.name, rt.kind, rt.arg = name, "manifests", ref
	} else if name, dgst, ok := last("/blobs/"); ok && dgst != "" {
		rt.name, rt.kind, rt.arg = name, "blobs", dgst
	} else {
		return rt, newError(http.StatusNotFound, "NOT_FOUND", "no such endpoint /v2/%s", path)
	}
	rt.repo = rt.name
	if ns != "" {
		if !domainRE.MatchString(ns) {
			return rt, newError(http.StatusBadRequest, "NAME_INVALID", "invalid namespace %q", ns)
		}
		rt.repo = ns + "/" + rt.name
	}
	if !validRepo(rt.repo) {
		return rt, newError(http.StatusBadRequest, "NAME_INVALID", "invalid repository name %q", rt.repo)
	}
	return rt, nil
}

// location builds a URL path for the same repository, keeping ?ns= so a
// client following it addresses the same repository.
func (rt route) location(suffix string) string {
	loc := "/v2/" + rt.name + suffix
	if rt.ns != "" {
		loc += "?ns=" + url.QueryEscape(rt.ns)
	}
	return loc
}

func writeError(w http.ResponseWriter, e *Error) {
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, e.Status, map[string][]detail{"errors": {{Code: e.Code, Message: e.Message}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errors":[{"code":"UNKNOWN","message":"encoding response"}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func unsupported(req *http.Request) error {
	return newError(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s is not supported here", req.Method)
}

func (r *Registry) serveBase(w http.ResponseWriter, req *http.Request) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return unsupported(req)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// serveStored sends a stored blob; http.ServeContent adds Content-Length,
// HEAD handling and the Range requests containerd uses to resume pulls.
func (r *Registry) serveStored(w http.ResponseWriter, req *http.Request, f *os.File, digest, contentType string) {
	defer f.Close()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Etag", `"`+digest+`"`)
	http.ServeContent(w, req, "", time.Time{}, f)
}

func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		h, mt, err := r.resolve(rt.repo, rt.arg)
		if err != nil {
			return err
		}
		f, err := r.openBlob(h)
		if err != nil {
			return err
		}
		r.serveStored(w, req, f, h.String(), string(mt))
		return nil
	case http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestSize+1))
		if err != nil {
			return newError(http.StatusBadRequest, "MANIFEST_INVALID", "reading manifest: %v", err)
		}
		if len(body) > maxManifestSize {
			return newError(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest larger than %d bytes", maxManifestSize)
		}
		h, err := r.putManifest(rt.repo, rt.arg, body, req.Header.Get("Content-Type"))
		if err != nil {
			return err
		}
		w.Header().Set("Location", rt.location("/manifests/"+h.String()))
		w.Header().Set("Docker-Content-Digest", h.String())
		w.WriteHeader(http.StatusCreated)
		return nil
	case http.MethodDelete:
		if err := r.deleteManifest(rt.repo, rt.arg); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return unsupported(req)
}

func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return unsupported(req)
	}
	h, err := parseDigest(rt.arg)
	if err != nil {
		return newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest %q: %v", rt.arg, err)
	}
	f, err := r.openBlob(h)
	if err != nil {
		return err
	}
	r.serveStored(w, req, f, h.String(), "application/octet-stream")
	return nil
}

// blobCreated answers a finished upload or a successful mount.
func blobCreated(w http.ResponseWriter, rt route, digest string) {
	w.Header().Set("Location", rt.location("/blobs/"+digest))
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// uploadStatus answers a started or continued upload: where to send the next
// chunk and what has arrived so far.
func uploadStatus(w http.ResponseWriter, rt route, id string, size int64, status int) {
	end := size - 1
	if end < 0 {
		end = 0 // distribution's convention for an empty upload
	}
	w.Header().Set("Location", rt.location("/blobs/uploads/"+id))
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", end))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func (r *Registry) serveUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	q := req.URL.Query()
	if rt.arg == "" {
		if req.Method != http.MethodPost {
			return unsupported(req)
		}
		// Blobs are global, so mounting from another repository succeeds
		// whenever the blob is stored; otherwise fall back to an upload.
		if mount, err := parseDigest(q.Get("mount")); err == nil {
			if _, err := r.statBlob(mount); err == nil {
				blobCreated(w, rt, mount.String())
				return nil
			}
		}
		if d := q.Get("digest"); d != "" {
			h, err := parseDigest(d)
			if err != nil {
				return newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest %q: %v", d, err)
			}
			if err := r.writeBlob(req.Body, h); err != nil {
				return err
			}
			blobCreated(w, rt, h.String())
			return nil
		}
		id := newID()
		f, err := os.Create(filepath.Join(r.uploadDir(), id))
		if err != nil {
			return err
		}
		f.Close()
		uploadStatus(w, rt, id, 0, http.StatusAccepted)
		return nil
	}

	unknown := newError(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload %s unknown", rt.arg)
	if !validID(rt.arg) {
		return unknown
	}
	path := filepath.Join(r.uploadDir(), rt.arg)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return unknown
	}
	if err != nil {
		return err
	}
	switch req.Method {
	case http.MethodGet:
		uploadStatus(w, rt, rt.arg, fi.Size(), http.StatusNoContent)
		return nil
	case http.MethodDelete:
		if err := os.Remove(path); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		// A chunk must continue exactly where the upload stands.
		if cr := req.Header.Get("Content-Range"); cr != "" {
			start, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes="), "-")
			if n, err := strconv.ParseInt(start, 10, 64); err != nil || n != fi.Size() {
				return newError(http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "Content-Range %q does not continue the upload at %d", cr, fi.Size())
			}
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, req.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return newError(http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "receiving chunk: %v", err)
		}
		uploadStatus(w, rt, rt.arg, fi.Size()+n, http.StatusAccepted)
		return nil
	case http.MethodPut:
		h, err := parseDigest(q.Get("digest"))
		if err != nil {
			os.Remove(path)
			return newError(http.StatusBadRequest, "DIGEST_INVALID", "invalid digest %q: %v", q.Get("digest"), err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		// commit removes the session file whether or not the digest matches.
		if err := r.commit(f, req.Body, h); err != nil {
			return err
		}
		blobCreated(w, rt, h.String())
		return nil
	}
	return unsupported(req)
}

// page applies the ?n= and ?last= pagination of tags/list and _catalog to a
// sorted list and sets the Link header when more entries follow.
func page(w http.ResponseWriter, req *http.Request, all []string) []string {
	q := req.URL.Query()
	if last := q.Get("last"); last != "" {
		all = all[sort.SearchStrings(all, last):]
		if len(all) > 0 && all[0] == last {
			all = all[1:]
		}
	}
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n >= 0 && n < len(all) {
		all = all[:n]
		if n > 0 {
			next := *req.URL
			v := next.Query()
			v.Set("last", all[n-1])
			next.RawQuery = v.Encode()
			w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.RequestURI()))
		}
	}
	return all
}

func (r *Registry) serveTags(w http.ResponseWriter, req *http.Request, rt route) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return unsupported(req)
	}
	tags, err := r.tags(rt.repo)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": rt.name, "tags": page(w, req, tags)})
	return nil
}

func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return unsupported(req)
	}
	repos, err := r.repositories()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"repositories": page(w, req, repos)})
	return nil
}
