package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/lotse/lotse/internal/storage"
)

// watch streams changes as upstream does: one JSON document per line, or
// length-prefixed protobuf WatchEvents for protobuf clients.
func (rq *request) watch() error {
	match, err := rq.matcher()
	if err != nil {
		return err
	}
	opts := storage.WatchOptions{
		Namespace:       rq.info.Namespace,
		ResourceVersion: rq.q.Get("resourceVersion"),
		AllowBookmarks:  isTrue(rq.q.Get("allowWatchBookmarks")),
		Match:           match,
	}
	if err := validateListOptions(rq.q, true); err != nil {
		return err
	}
	if v := rq.q.Get("sendInitialEvents"); v != "" {
		b := isTrue(v)
		opts.SendInitialEvents = &b
	}
	timeout := time.Duration(1800+rand.IntN(1800)) * time.Second
	if v := rq.q.Get("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid timeoutSeconds %q", v))
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	ctx, cancel := context.WithTimeout(rq.ctx, timeout)
	defer cancel()
	opts.Deadline, _ = ctx.Deadline()
	w, err := rq.res.Watch(ctx, opts)
	if err != nil {
		if errors.Is(err, storage.ErrExpired) {
			return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %s", opts.ResourceVersion))
		}
		return rq.storageErr(err)
	}
	defer w.Stop()

	flusher, _ := rq.w.(http.Flusher)
	if rq.out.mediaType == mediaYAML {
		// YAML has no stream framing; upstream streams JSON instead.
		rq.out = &output{mediaType: mediaJSON, encoder: jsonSerializer, as: rq.out.as}
	}
	ct := rq.out.mediaType
	if ct == mediaProtobuf {
		ct += ";stream=watch"
	}
	rq.w.Header().Set("Content-Type", ct)
	rq.w.Header().Set("Cache-Control", "no-cache, private")
	rq.w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	var buf bytes.Buffer
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			buf.Reset()
			if err := rq.encodeEvent(&buf, ev); err != nil {
				rq.s.log.Warn("encoding watch event", "err", err)
				return nil
			}
			if _, err := rq.w.Write(buf.Bytes()); err != nil {
				return nil
			}
			if flusher != nil && len(w.ResultChan()) == 0 {
				flusher.Flush()
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// encodeEvent frames one watch event in the negotiated format.
func (rq *request) encodeEvent(buf *bytes.Buffer, sev storage.WatchEvent) error {
	ev, enc := sev.Event, sev.Enc
	obj := toServed(rq.kind, ev.Object)
	switch as := rq.out.as; {
	case ev.Type == watch.Error:
		// A Status, whatever the client asked the objects to look like.
	case as == "Table":
		if ev.Type == watch.Bookmark {
			obj = &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"},
				ListMeta: metav1.ListMeta{ResourceVersion: accessor(obj).GetResourceVersion()}}
			break
		}
		t, err := rq.table([]runtime.Object{obj}, metav1.ListMeta{ResourceVersion: accessor(obj).GetResourceVersion()})
		if err != nil {
			return err
		}
		obj = t
	case as == "PartialObjectMetadata" || as == "PartialObjectMetadataList":
		obj = partialMetadata(obj)
	}
	if rq.out.mediaType == mediaProtobuf {
		// The frame is a raw WatchEvent message whose object is a regular
		// protobuf-encoded object, as client-go's streaming decoder expects.
		inner, err := rq.eventObjectProtobuf(obj, enc)
		if err != nil {
			return err
		}
		we := &metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: inner}}
		outer, err := we.Marshal()
		if err != nil {
			return err
		}
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(outer)))
		buf.Write(n[:])
		buf.Write(outer)
		return nil
	}
	buf.WriteString(`{"type":"`)
	buf.WriteString(string(ev.Type))
	buf.WriteString(`","object":`)
	b, err := rq.eventObjectJSON(obj, enc)
	if err != nil {
		return err
	}
	buf.Write(b)
	buf.WriteString("}\n")
	return nil
}

// eventObjectJSON encodes an event's object, sharing the bytes with every
// other watcher when the object is sent as stored.
func (rq *request) eventObjectJSON(obj runtime.Object, enc *storage.Encodings) ([]byte, error) {
	if rq.out.as != "" {
		enc = nil
	}
	return rq.objectJSON(objectIs(obj), enc)
}

func (rq *request) eventObjectProtobuf(obj runtime.Object, enc *storage.Encodings) ([]byte, error) {
	if rq.out.as != "" {
		enc = nil
	}
	return rq.objectProtobuf(objectIs(obj), enc)
}
