package intent_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseSpecWorkspace(t *testing.T) {
	for name, data := range map[string][]byte{"plain": intenttest.SpecWorkspace, "gzip": gz(t, intenttest.SpecWorkspace)} {
		t.Run(name, func(t *testing.T) {
			ws, err := intent.ParseWorkspace(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(ws.Intents) != 7 || len(ws.Examples) != 71 || len(ws.Entities) != 3 {
				t.Fatalf("got %d intents, %d examples, %d entities; want 7, 71, 3", len(ws.Intents), len(ws.Examples), len(ws.Entities))
			}
			ds := ws.Dataset("")
			if len(ds.Classes) != 7 || len(ds.Train) != 71 || len(ds.Test) != 0 {
				t.Errorf("dataset: %d classes, %d train, %d test", len(ds.Classes), len(ds.Train), len(ds.Test))
			}
		})
	}
}

func TestParseHierarchy(t *testing.T) {
	ws, err := intent.ParseWorkspace(intenttest.SpecHierarchicalWorkspace)
	if err != nil {
		t.Fatal(err)
	}
	if got := ws.FullName("intent-mobile", " / "); got != "about platforms / Does it work on mobile or tablet?" {
		t.Errorf("full name %q", got)
	}
	ds := ws.Dataset("")
	for _, c := range ds.Classes {
		if c.ID == "intent-cost" && c.FullName != "about billing/how much does it cost?" {
			t.Errorf("class %+v", c)
		}
	}
}

func TestDatasetTagsAndNegatives(t *testing.T) {
	ws, err := intent.ParseWorkspace([]byte(`{
	  "intents": [{"id": "p", "name": "parent"}, {"id": "a", "name": "A", "parent_intent_id": "p"},
	              {"id": "b", "name": "B", "parent_intent_id": "gone"}, {"id": "c", "name": "C"}],
	  "tags": [{"id": "tag-t", "name": "Test"}, {"id": "tag-x", "name": "Other"}],
	  "examples": [
	    {"id": "1", "text": "one", "intents": [{"intent_id": "a"}]},
	    {"id": "2", "text": "two", "intents": [{"intent_id": "a"}], "tags": [{"id": "tag-t"}]},
	    {"id": "3", "text": "three", "intents": [{"intent_id": "b", "negative": true}]},
	    {"id": "4", "text": "four", "intents": [{"intent_id": "a", "negative": true}, {"intent_id": "b"}], "tags": [{"id": "tag-x"}]},
	    {"id": "5", "text": "five", "intents": [{"intent_id": "c"}], "tags": [{"id": "unlisted", "name": "Test"}]},
	    {"id": "6", "text": "unlabeled"}
	  ],
	  "entities": []
	}`))
	if err != nil {
		t.Fatal(err)
	}
	ds := ws.Dataset(" > ")
	var classes []string
	for _, c := range ds.Classes {
		classes = append(classes, c.FullName)
	}
	// "b" has a missing parent: treated as a root. "c" only labels a Test phrase.
	if got := strings.Join(classes, "|"); got != "parent > A|B|C" {
		t.Errorf("classes %q", got)
	}
	var train, test []string
	for _, s := range ds.Train {
		train = append(train, s.PhraseID)
	}
	for _, s := range ds.Test {
		test = append(test, s.PhraseID)
	}
	if strings.Join(train, ",") != "1,4" || strings.Join(test, ",") != "2,5" || ds.SkippedNegative != 1 {
		t.Errorf("train %v, test %v, skipped %d", train, test, ds.SkippedNegative)
	}
}

func TestParseWorkspaceErrors(t *testing.T) {
	cases := []struct {
		name, json, want string
	}{
		{"empty", ``, "empty document"},
		{"not json", `hello`, "invalid JSON"},
		{"array", `[]`, "expected intent.Workspace"},
		{"truncated", `{"intents": [`, "truncated JSON"},
		{"trailing", `{} {}`, "unexpected data after"},
		{"intents not array", `{"intents": {}}`, "intents: expected"},
		{"text not string", `{"intents":[{"id":"a"}],"examples":[{"text": 5, "intents":[{"intent_id":"a"}]}]}`, "examples.text: expected string"},
		{"missing intent id", `{"intents":[{"name":"x"}]}`, "intents[0].id: missing intent id"},
		{"duplicate intent", `{"intents":[{"id":"a"},{"id":"a"}]}`, `intents[1].id: duplicate intent id "a"`},
		{"cycle", `{"intents":[{"id":"a","parent_intent_id":"b"},{"id":"b","parent_intent_id":"a"}]}`, "its own ancestor"},
		{"self parent", `{"intents":[{"id":"a","parent_intent_id":"a"}]}`, "its own ancestor"},
		{"unknown intent", `{"intents":[{"id":"a"}],"examples":[{"text":"hi","intents":[{"intent_id":"zz"}]}]}`, `examples[0].intents[0].intent_id: unknown intent "zz"`},
		{"empty label", `{"intents":[{"id":"a"}],"examples":[{"text":"hi","intents":[{}]}]}`, "missing intent id"},
		{"empty text", `{"intents":[{"id":"a"}],"examples":[{"text":"  ","intents":[{"intent_id":"a"}]}]}`, "examples[0].text: empty text"},
		{"bad span", `{"intents":[{"id":"a"}],"examples":[{"text":"hi","entities":[{"entity_id":"e","text":"hi","span":{"from_character":2,"to_character":1}}]}]}`, "bad span"},
		{"duplicate entity", `{"entities":[{"id":"e"},{"id":"e"}]}`, "duplicate entity id"},
		{"missing entity id", `{"entities":[{"name":"e"}]}`, "missing entity id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := intent.ParseWorkspace([]byte(c.json))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !errors.Is(err, intent.ErrInvalidWorkspace) {
				t.Errorf("error %v does not match ErrInvalidWorkspace", err)
			}
			var de *intent.DataError
			if !errors.As(err, &de) {
				t.Errorf("error %T is not a *DataError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestDecompress(t *testing.T) {
	if _, err := intent.ParseWorkspace([]byte{0x1f, 0x8b, 0, 1, 2}); err == nil || !strings.Contains(err.Error(), "bad gzip") {
		t.Errorf("corrupt gzip: %v", err)
	}
	// A gzip bomb stops at the limit instead of filling memory.
	bomb := gz(t, bytes.Repeat([]byte(" "), 1<<20))
	if _, err := intent.Decompress(bomb, 1<<10); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("bomb: %v", err)
	}
	if _, err := intent.Decompress(make([]byte, 2048), 1<<10); err == nil {
		t.Error("plain data over the limit accepted")
	}
	out, err := intent.Decompress(gz(t, []byte("{}")), 0)
	if err != nil || string(out) != "{}" {
		t.Errorf("got %q, %v", out, err)
	}
}

// FuzzParseWorkspace checks that arbitrary bytes never panic the parser and that whatever it
// accepts yields a consistent dataset.
func FuzzParseWorkspace(f *testing.F) {
	// Small seeds only: the mutator slows to a crawl on the 28 KB spec workspace.
	f.Add([]byte(""))
	f.Add([]byte(`{"intents":[{"id":"a","name":"A"},{"id":"b","parent_intent_id":"a"}],"tags":[{"id":"t","name":"Test"}],
	  "examples":[{"text":"hi there","intents":[{"intent_id":"b"}],"entities":[{"entity_id":"e","text":"hi","span":{"from_character":0,"to_character":2}}]}],
	  "entities":[{"id":"e","name":"greeting","values":[{"id":"v","key_value":"hi","synonyms":[{"value":"hello"}]}]}]}`))
	f.Add([]byte(`{"intents":[{"id":"a","parent_intent_id":"a"}]}`))
	f.Add([]byte(`{"intents":[{"id":"a"}],"examples":[{"text":"x","intents":[{"intent_id":"a","negative":true}],"tags":[{"id":"t","name":"Test"}]}]}`))
	f.Add(gz(f, []byte(`{"intents":[]}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := intent.ParseWorkspace(data)
		if err != nil {
			if !errors.Is(err, intent.ErrInvalidWorkspace) {
				t.Fatalf("error %v does not wrap ErrInvalidWorkspace", err)
			}
			return
		}
		ds := ws.Dataset("/")
		for _, s := range append(ds.Train, ds.Test...) {
			if s.Label < 0 || s.Label >= len(ds.Classes) {
				t.Fatalf("label %d out of %d classes", s.Label, len(ds.Classes))
			}
		}
		for _, in := range ws.Intents {
			_ = ws.FullName(in.ID, "/")
		}
	})
}
