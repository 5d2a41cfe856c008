package apiserver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lotse/lotse/internal/storage"
)

// protoMessage is what the generated k8s.io/api types implement.
type protoMessage interface {
	Marshal() ([]byte, error)
}

// protobufMagic starts every Kubernetes protobuf document.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// Memo keys for storage.Encodings.
const (
	encJSON     = "json"      // the object as a JSON document, no newline
	encProtobuf = "protobuf"  // the object as a Kubernetes protobuf document
	encProtoRaw = "proto-raw" // the bare protobuf message, as a list item
)

// memoFor returns the encodings memo that may be used for obj as served:
// only objects served exactly as stored share bytes with the cache.
func (rq *request) memoFor(enc *storage.Encodings) *storage.Encodings {
	if rq.kind.GVK != rq.kind.StorageGVK || rq.out.pretty {
		return nil
	}
	return enc
}

// lazyObject returns the object to encode. The encoders call it only when
// no memoized encoding serves, so that an object the watch cache holds
// encoded is decoded only then.
type lazyObject func() (runtime.Object, error)

func objectIs(obj runtime.Object) lazyObject {
	return func() (runtime.Object, error) { return obj, nil }
}

func (rq *request) objectJSON(obj lazyObject, enc *storage.Encodings) ([]byte, error) {
	return rq.memoFor(enc).Get(encJSON, func() ([]byte, error) {
		o, err := obj()
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := jsonSerializer.Encode(o, &buf); err != nil {
			return nil, err
		}
		return bytes.TrimRight(buf.Bytes(), "\n"), nil
	})
}

func (rq *request) objectProtobuf(obj lazyObject, enc *storage.Encodings) ([]byte, error) {
	return rq.memoFor(enc).Get(encProtobuf, func() ([]byte, error) {
		o, err := obj()
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		err = protoSerializer.Encode(o, &buf)
		return buf.Bytes(), err
	})
}

func (rq *request) objectProtoRaw(obj lazyObject, enc *storage.Encodings) ([]byte, error) {
	return rq.memoFor(enc).Get(encProtoRaw, func() ([]byte, error) {
		o, err := obj()
		if err != nil {
			return nil, err
		}
		m, ok := o.(protoMessage)
		if !ok {
			return nil, errNotProto
		}
		return m.Marshal()
	})
}

var errNotProto = &json.UnsupportedTypeError{}

// writeEncoded writes obj with status 200 from its memoized encoding when
// it is served as stored, as JSON or protobuf. It reports false when the
// request needs the general path.
func (rq *request) writeEncoded(obj lazyObject, enc *storage.Encodings) (bool, error) {
	if enc == nil || rq.memoFor(enc) == nil || rq.out.as != "" || rq.r.Method == http.MethodHead {
		return false, nil
	}
	var body []byte
	var err error
	switch rq.out.mediaType {
	case mediaJSON:
		body, err = rq.objectJSON(obj, enc)
	case mediaProtobuf:
		body, err = rq.objectProtobuf(obj, enc)
	default:
		return false, nil
	}
	if err != nil {
		return false, nil
	}
	if rq.out.mediaType == mediaJSON {
		// As the serializer writes a document: with its newline.
		body = append(body[:len(body):len(body)], '\n')
	}
	rq.w.Header().Set("Content-Type", rq.out.mediaType)
	rq.w.WriteHeader(http.StatusOK)
	_, err = rq.w.Write(body)
	return true, err
}

// streamList writes a plain JSON or protobuf list of n items item by item
// from their memoized encodings (encAt: nil when none), instead of
// encoding the whole list into one buffer. It reports false when the
// request needs the general path.
func (rq *request) streamList(n int, item func(i int) lazyObject, encAt func(i int) *storage.Encodings, lm metav1.ListMeta) (bool, error) {
	if rq.out.as != "" || rq.out.pretty || rq.r.Method == http.MethodHead {
		return false, nil
	}
	listKind := rq.kind.GVK.Kind + "List"
	apiVersion := rq.kind.GVK.GroupVersion().String()
	switch rq.out.mediaType {
	case mediaJSON:
		parts := make([][]byte, n)
		for i := range parts {
			b, err := rq.objectJSON(item(i), encAt(i))
			if err != nil {
				return false, nil
			}
			parts[i] = b
		}
		meta, err := json.Marshal(lm)
		if err != nil {
			return false, nil
		}
		rq.w.Header().Set("Content-Type", mediaJSON)
		rq.w.WriteHeader(http.StatusOK)
		bw := bufio.NewWriterSize(rq.w, 64<<10)
		bw.WriteString(`{"kind":"` + listKind + `","apiVersion":"` + apiVersion + `","metadata":`)
		bw.Write(meta)
		bw.WriteString(`,"items":[`)
		for i, p := range parts {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.Write(p)
		}
		bw.WriteString("]}\n")
		return true, bw.Flush()
	case mediaProtobuf:
		parts := make([][]byte, n)
		for i := range parts {
			b, err := rq.objectProtoRaw(item(i), encAt(i))
			if err != nil {
				return false, nil
			}
			parts[i] = b
		}
		meta, err := lm.Marshal()
		if err != nil {
			return false, nil
		}
		// The list message: field 1 ListMeta, field 2 repeated items.
		rawLen := fieldLen(len(meta))
		for _, p := range parts {
			rawLen += fieldLen(len(p))
		}
		// The runtime.Unknown envelope: field 1 TypeMeta, field 2 raw.
		typeMeta := appendField(appendField(nil, 1, []byte(apiVersion)), 2, []byte(listKind))
		rq.w.Header().Set("Content-Type", mediaProtobuf)
		rq.w.WriteHeader(http.StatusOK)
		bw := bufio.NewWriterSize(rq.w, 64<<10)
		bw.Write(protobufMagic)
		bw.Write(appendField(nil, 1, typeMeta))
		bw.Write(appendTag(nil, 2, rawLen))
		bw.Write(appendField(nil, 1, meta))
		for _, p := range parts {
			bw.Write(appendTag(nil, 2, len(p)))
			bw.Write(p)
		}
		return true, bw.Flush()
	}
	return false, nil
}

// appendTag appends a length-delimited field header.
func appendTag(b []byte, field int, n int) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3|2))
	return binary.AppendUvarint(b, uint64(n))
}

func appendField(b []byte, field int, data []byte) []byte {
	return append(appendTag(b, field, len(data)), data...)
}

// fieldLen is the encoded size of a length-delimited field of n bytes
// with a one-byte tag.
func fieldLen(n int) int {
	var tmp [binary.MaxVarintLen64]byte
	return 1 + binary.PutUvarint(tmp[:], uint64(n)) + n
}
