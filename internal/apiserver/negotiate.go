package apiserver

import (
	"mime"
	"net/http"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/munnerz/goautoneg"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

// Serializers shared by every request; they hold no per-request state.
var (
	jsonSerializer       = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{})
	jsonStrictSerializer = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Strict: true})
	yamlSerializer       = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true})
	yamlStrictSerializer = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true, Strict: true})
	protoSerializer      = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	protoStreamFramer    = protobuf.LengthDelimitedFramer
)

// output is the negotiated response representation.
type output struct {
	mediaType string // mediaJSON, mediaYAML or mediaProtobuf
	// as is "", "Table", "PartialObjectMetadata" or "PartialObjectMetadataList".
	as      string
	encoder runtime.Encoder
	pretty  bool
}

// negotiate picks the response representation from the Accept header, as
// upstream does: the first acceptable type in preference order wins;
// nothing acceptable is a 406.
func negotiate(r *http.Request) (*output, bool) {
	header := r.Header.Get("Accept")
	if header == "" {
		header = "*/*"
	}
	for _, a := range goautoneg.ParseAccept(header) {
		typ := a.Type + "/" + a.SubType
		out := &output{as: a.Params["as"]}
		if out.as != "" && (a.Params["g"] != "meta.k8s.io" || (a.Params["v"] != "v1" && a.Params["v"] != "v1beta1")) {
			continue
		}
		switch out.as {
		case "", "Table", "PartialObjectMetadata", "PartialObjectMetadataList":
		default:
			continue
		}
		switch typ {
		case "application/json", "*/*", "application/*":
			out.mediaType, out.encoder = mediaJSON, jsonSerializer
		case "application/yaml":
			out.mediaType, out.encoder = mediaYAML, yamlSerializer
		case mediaProtobuf:
			if out.as == "Table" {
				continue
			}
			out.mediaType, out.encoder = mediaProtobuf, protoSerializer
		default:
			continue
		}
		return out, true
	}
	return nil, false
}

// decoderFor returns the body decoder for a request Content-Type.
func decoderFor(contentType string, strict bool) (runtime.Decoder, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, false
	}
	switch strings.ToLower(mt) {
	case "", mediaJSON:
		if strict {
			return jsonStrictSerializer, true
		}
		return jsonSerializer, true
	case mediaYAML:
		if strict {
			return yamlStrictSerializer, true
		}
		return yamlSerializer, true
	case mediaProtobuf:
		return protoSerializer, true
	}
	return nil, false
}

// decodeJSONFast decodes into a JSON body that names exactly the kind
// wanted, as nearly every request does, in one pass: the serializer scans
// the whole document once more with encoding/json only to read apiVersion
// and kind. It reports false for anything else, errors and unknown fields
// included; the serializer's path then decodes again and words the errors
// as upstream does.
func decodeJSONFast(data []byte, contentType string, strict bool, into runtime.Object, want schema.GroupVersionKind) bool {
	if mt, _, _ := mime.ParseMediaType(contentType); mt != mediaJSON && contentType != "" {
		return false
	}
	// JSON v2 (encoding/json/v2 from Go 1.27 on) matches names
	// case-sensitively and refuses duplicate names, as the strict
	// serializer does, and decodes a pod twice as fast as sigs.k8s.io/json.
	// TestDecodeJSONFastAgreesWithTheSerializer holds the two together.
	err := jsonv2.Unmarshal(data, into, jsonv2.RejectUnknownMembers(strict))
	return err == nil && into.GetObjectKind().GroupVersionKind() == want
}

func init() {
	// Table and PartialObjectMetadata(List) are answered under meta.k8s.io/v1;
	// the protobuf serializer needs them in the scheme.
	if err := metav1.AddMetaToScheme(scheme.Scheme); err != nil {
		panic(err)
	}
}
