package humanfirst_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/infergo/infergo/server/humanfirst/pb/configpb"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
	"github.com/infergo/infergo/server/humanfirst/pb/nlupb"
	"github.com/infergo/infergo/server/humanfirst/pb/tagspb"
)

// TestDescriptorsMatchHumanFirst compares our .proto files with HumanFirst's own descriptors
// (the serialized FileDescriptorProtos embedded in their generated *_pb2.py files, extracted to
// testdata/descriptors; see testdata/README.md). Every message, field (number, name, type,
// label, type name), enum value and RPC must match; tags.proto is intentionally trimmed, so
// only the messages we keep are compared there.
func TestDescriptorsMatchHumanFirst(t *testing.T) {
	cases := []struct {
		file    string
		ours    protoreflect.FileDescriptor
		trimmed bool
	}{
		{"external_integration_v1alpha1_discovery.binpb", integrationpb.File_external_integration_v1alpha1_discovery_proto, false},
		{"external_integration_v1alpha1_models.binpb", integrationpb.File_external_integration_v1alpha1_models_proto, false},
		{"external_integration_v1alpha1_workspace.binpb", integrationpb.File_external_integration_v1alpha1_workspace_proto, false},
		{"external_nlu_v1alpha1_service.binpb", nlupb.File_external_nlu_v1alpha1_service_proto, false},
		{"playbook_data_config_v1alpha1_config.binpb", configpb.File_playbook_data_config_v1alpha1_config_proto, false},
		{"tags_tags.binpb", tagspb.File_tags_tags_proto, true},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "descriptors", c.file))
			if err != nil {
				t.Fatal(err)
			}
			var orig descriptorpb.FileDescriptorProto
			if err := proto.Unmarshal(raw, &orig); err != nil {
				t.Fatalf("decode original descriptor: %v", err)
			}
			mine := protodesc.ToFileDescriptorProto(c.ours)
			if orig.GetName() != mine.GetName() || orig.GetPackage() != mine.GetPackage() {
				t.Fatalf("file %s (%s), want %s (%s)", mine.GetName(), mine.GetPackage(), orig.GetName(), orig.GetPackage())
			}
			origMsgs := map[string]*descriptorpb.DescriptorProto{}
			for _, m := range orig.MessageType {
				origMsgs[m.GetName()] = m
			}
			for _, m := range mine.MessageType {
				o, ok := origMsgs[m.GetName()]
				if !ok {
					t.Errorf("message %s not in HumanFirst's descriptor", m.GetName())
					continue
				}
				compareMessage(t, o, m)
				delete(origMsgs, m.GetName())
			}
			if !c.trimmed {
				for name := range origMsgs {
					t.Errorf("message %s missing from our proto", name)
				}
				if !proto.Equal(&descriptorpb.FileDescriptorProto{EnumType: orig.EnumType}, &descriptorpb.FileDescriptorProto{EnumType: mine.EnumType}) {
					t.Errorf("enums differ:\norig %v\nmine %v", orig.EnumType, mine.EnumType)
				}
				if len(orig.Service) != len(mine.Service) {
					t.Fatalf("%d services, want %d", len(mine.Service), len(orig.Service))
				}
				for i, s := range orig.Service {
					compareService(t, s, mine.Service[i])
				}
			}
		})
	}
}

func compareMessage(t *testing.T, o, m *descriptorpb.DescriptorProto) {
	t.Helper()
	if len(o.Field) != len(m.Field) {
		t.Errorf("%s: %d fields, want %d", m.GetName(), len(m.Field), len(o.Field))
		return
	}
	for i, of := range o.Field {
		mf := m.Field[i]
		if of.GetNumber() != mf.GetNumber() || of.GetName() != mf.GetName() || of.GetType() != mf.GetType() ||
			of.GetLabel() != mf.GetLabel() || of.GetTypeName() != mf.GetTypeName() ||
			of.OneofIndex != nil || mf.OneofIndex != nil || of.GetProto3Optional() != mf.GetProto3Optional() {
			t.Errorf("%s field %d: ours %v, HumanFirst's %v", m.GetName(), i, mf, of)
		}
	}
}

func compareService(t *testing.T, o, m *descriptorpb.ServiceDescriptorProto) {
	t.Helper()
	if o.GetName() != m.GetName() || len(o.Method) != len(m.Method) {
		t.Fatalf("service %s with %d methods, want %s with %d", m.GetName(), len(m.Method), o.GetName(), len(o.Method))
	}
	for i, om := range o.Method {
		mm := m.Method[i]
		if om.GetName() != mm.GetName() || om.GetInputType() != mm.GetInputType() || om.GetOutputType() != mm.GetOutputType() ||
			om.GetClientStreaming() || mm.GetClientStreaming() || om.GetServerStreaming() || mm.GetServerStreaming() {
			t.Errorf("%s method %d: ours %v, HumanFirst's %v", m.GetName(), i, mm, om)
		}
	}
}

// Hand-encoding helpers: each appends one field using the spec's field numbers, so the test
// does not depend on the generated code to produce its inputs.
func tagBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
func tagString(b []byte, num protowire.Number, s string) []byte { return tagBytes(b, num, []byte(s)) }
func tagVarint(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}
func tagFloat(b []byte, num protowire.Number, bits uint32) []byte {
	return protowire.AppendFixed32(protowire.AppendTag(b, num, protowire.Fixed32Type), bits)
}

// TestWireDecoding decodes byte strings built by hand from the spec's field numbers (§2.4-2.8)
// with the generated types.
func TestWireDecoding(t *testing.T) {
	t.Run("TrainModelRequest", func(t *testing.T) {
		var pred []byte
		pred = tagString(pred, 1, "req")
		pred = tagString(pred, 2, "exc")
		pred = tagString(pred, 3, "inc")
		var opts []byte
		opts = tagVarint(opts, 1, 1)
		opts = tagString(opts, 2, " / ")
		opts = tagVarint(opts, 3, 0)
		opts = tagVarint(opts, 4, 1)
		opts = tagVarint(opts, 5, 1)
		opts = tagVarint(opts, 6, 1)
		opts = tagBytes(opts, 7, pred)
		opts = tagBytes(opts, 8, tagString(nil, 2, "phrase-tag"))
		opts = tagVarint(opts, 9, 1)
		var b []byte
		b = tagString(b, 1, "ns")
		b = tagString(b, 2, "integ")
		b = tagVarint(b, 3, 7)
		b = tagBytes(b, 4, opts)
		b = tagBytes(b, 6, []byte{0x1f, 0x8b, 0x00})
		var m integrationpb.TrainModelRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		o := m.GetFormatOptions()
		if m.GetNamespace() != "ns" || m.GetIntegrationId() != "integ" || m.GetDataFormat() != configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON ||
			!bytes.Equal(m.GetData(), []byte{0x1f, 0x8b, 0x00}) {
			t.Errorf("decoded %v", &m)
		}
		if !o.GetHierarchicalIntentNameDisabled() || o.GetHierarchicalDelimiter() != " / " || o.GetZipEncoding() ||
			!o.GetHierarchicalFollowUp() || !o.GetIncludeNegativePhrases() || !o.GetGzipEncoding() || !o.GetSkipEmptyIntents() {
			t.Errorf("options %v", o)
		}
		p := o.GetIntentTagPredicate()
		if strings.Join(p.GetRequireIds(), ",") != "req" || strings.Join(p.GetExcludeIds(), ",") != "exc" || strings.Join(p.GetIncludeIds(), ",") != "inc" ||
			strings.Join(o.GetPhraseTagPredicate().GetExcludeIds(), ",") != "phrase-tag" {
			t.Errorf("predicates %v / %v", p, o.GetPhraseTagPredicate())
		}
		if len(m.ProtoReflect().GetUnknown()) != 0 || len(o.ProtoReflect().GetUnknown()) != 0 {
			t.Error("fields decoded as unknown: a field number differs from the spec")
		}
	})

	t.Run("ClassifyRequestResponse", func(t *testing.T) {
		var req []byte
		req = tagString(req, 3, "m1")
		req = tagBytes(req, 4, tagString(nil, 1, "hello"))
		req = tagBytes(req, 4, tagString(nil, 1, "bye"))
		var cr integrationpb.ClassifyRequest
		if err := proto.Unmarshal(req, &cr); err != nil {
			t.Fatal(err)
		}
		if cr.GetModelId() != "m1" || len(cr.GetExamples()) != 2 || cr.GetExamples()[1].GetContents() != "bye" {
			t.Errorf("decoded %v", &cr)
		}

		var match []byte
		match = tagString(match, 1, "intent-A")
		match = tagString(match, 2, "intent-A")
		match = tagFloat(match, 3, 0x3f400000) // 0.75
		var ref []byte
		ref = tagString(ref, 1, "morning")
		ref = tagString(ref, 3, "timeofday")
		ref = tagString(ref, 5, "morning")
		ref = tagString(ref, 6, "when")
		ref = tagString(ref, 7, "entity-T")
		ref = tagString(ref, 8, "entval-M")
		var em []byte
		em = tagBytes(em, 1, ref)
		em = tagFloat(em, 2, 0x3f800000) // 1.0
		em = tagBytes(em, 3, tagVarint(tagVarint(nil, 1, 14), 2, 21))
		em = tagString(em, 4, "gazetteer")
		var preds []byte
		preds = tagBytes(preds, 1, match)
		preds = tagBytes(preds, 2, em)
		resp := tagBytes(nil, 1, preds)
		var m integrationpb.ClassifyResponse
		if err := proto.Unmarshal(resp, &m); err != nil {
			t.Fatal(err)
		}
		p := m.GetPredictions()[0]
		im := p.GetMatches()[0]
		e := p.GetEntityMatches()[0]
		if im.GetId() != "intent-A" || im.GetName() != "intent-A" || im.GetScore() != 0.75 {
			t.Errorf("intent match %v", im)
		}
		r := e.GetEntity()
		if r.GetText() != "morning" || r.GetKey() != "timeofday" || r.GetValue() != "morning" || r.GetRole() != "when" ||
			r.GetEntityId() != "entity-T" || r.GetEntityValueId() != "entval-M" || e.GetScore() != 1 ||
			e.GetSpan().GetStart() != 14 || e.GetSpan().GetEnd() != 21 || e.GetExtractor() != "gazetteer" {
			t.Errorf("entity match %v", e)
		}
		// Deterministic re-encoding gives back the hand-made bytes (fields in number order).
		out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&m)
		if err != nil || !bytes.Equal(out, resp) {
			t.Errorf("re-encoded %x, want %x (%v)", out, resp, err)
		}
	})

	t.Run("EmbedResponse", func(t *testing.T) {
		// The spec's reference encoding (§2.9) of EmbedResponse{data:[0.5,1.5], shape:[1,2]}.
		want, _ := hex.DecodeString("12080000003f0000c03f1a020102")
		var m integrationpb.EmbedResponse
		if err := proto.Unmarshal(want, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.GetData()) != 2 || m.GetData()[0] != 0.5 || m.GetData()[1] != 1.5 || len(m.GetShape()) != 2 || m.GetShape()[1] != 2 {
			t.Errorf("decoded %v", &m)
		}
		out, err := proto.Marshal(&integrationpb.EmbedResponse{Data: []float32{0.5, 1.5}, Shape: []uint32{1, 2}})
		if err != nil || !bytes.Equal(out, want) {
			t.Errorf("encoded %x, want %x", out, want)
		}
	})

	t.Run("Capabilities", func(t *testing.T) {
		var b []byte
		b = tagVarint(b, 1, 1)
		b = tagVarint(b, 2, 1)
		b = tagVarint(b, 10, 3)
		b = tagVarint(b, 11, 1000)
		var m integrationpb.GetCapabilitiesResponse
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if !m.GetSupportsModels() || !m.GetSupportsWorkspaces() || m.GetMaxConcurrentModels() != 3 || m.GetModelClassificationBatchSize() != 1000 {
			t.Errorf("decoded %v", &m)
		}
	})

	t.Run("ModelAndWorkspaces", func(t *testing.T) {
		var ec []byte
		for i, v := range []uint64{384, 64, 0, 512} {
			ec = tagVarint(ec, protowire.Number(i+1), v)
		}
		var b []byte
		b = tagString(b, 1, "clf-1")
		b = tagString(b, 2, "Intent classifier")
		b = tagBytes(b, 3, ec)
		b = tagBytes(b, 4, tagVarint(nil, 1, 1000))
		var m integrationpb.Model
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.GetId() != "clf-1" || m.GetDisplayName() != "Intent classifier" || m.GetEmbeddings().GetDimensionality() != 384 ||
			m.GetEmbeddings().GetMaxBatchSize() != 64 || m.GetEmbeddings().GetMaxTokenCount() != 512 || m.GetClassification().GetMaxBatchSize() != 1000 {
			t.Errorf("decoded %v", &m)
		}

		var ir []byte
		ir = tagString(ir, 3, "ws")
		ir = tagVarint(ir, 4, 7)
		ir = tagBytes(ir, 5, tagVarint(nil, 6, 1))
		ir = tagBytes(ir, 6, []byte("{}"))
		var imp integrationpb.ImportWorkspaceRequest
		if err := proto.Unmarshal(ir, &imp); err != nil {
			t.Fatal(err)
		}
		if imp.GetWorkspaceId() != "ws" || imp.GetDataFormat() != configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON ||
			!imp.GetFormatOptions().GetGzipEncoding() || string(imp.GetData()) != "{}" {
			t.Errorf("decoded %v", &imp)
		}
		var ex integrationpb.ExportWorkspaceResponse
		if err := proto.Unmarshal(tagBytes(tagVarint(nil, 1, 7), 3, []byte("x")), &ex); err != nil || string(ex.GetData()) != "x" {
			t.Errorf("decoded %v (%v)", &ex, err)
		}
		var cw integrationpb.CreateWorkspaceRequest
		w := tagString(tagString(tagString(nil, 1, "id"), 2, "name"), 3, "desc")
		if err := proto.Unmarshal(tagBytes(nil, 3, w), &cw); err != nil || cw.GetWorkspace().GetDescription() != "desc" {
			t.Errorf("decoded %v (%v)", &cw, err)
		}
	})
}
