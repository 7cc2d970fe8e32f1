package intent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrInvalidWorkspace is wrapped by every error about malformed HumanFirst JSON, so transports
// can answer it with gRPC InvalidArgument (errors.Is).
var ErrInvalidWorkspace = errors.New("invalid HumanFirst workspace")

// DataError reports malformed training data: where (a JSON-path-like location) and what.
type DataError struct {
	Path string // e.g. "examples[3].intents[0].intent_id"; empty for the document as a whole
	Msg  string
}

func (e *DataError) Error() string {
	if e.Path == "" {
		return "humanfirst json: " + e.Msg
	}
	return "humanfirst json: " + e.Path + ": " + e.Msg
}

// Unwrap makes every DataError match ErrInvalidWorkspace.
func (e *DataError) Unwrap() error { return ErrInvalidWorkspace }

func dataErrorf(path, format string, args ...any) error {
	return &DataError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Workspace is a HumanFirst JSON workspace export (the INTENTS_FORMAT_HF_JSON format), reduced
// to what training needs. Unknown keys are ignored so newer exports still parse; the keys below
// are type-checked.
type Workspace struct {
	Name        string   `json:"name,omitempty"`
	Description string   `json:"description,omitempty"`
	Intents     []Intent `json:"intents"`
	Examples    []Phrase `json:"examples"`
	Entities    []Entity `json:"entities"`
	Tags        []Tag    `json:"tags,omitempty"`
}

// Intent is one intent of the hierarchy. Name is the leaf name; the full name is the chain of
// ancestors' names.
type Intent struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	ParentIntentID string   `json:"parent_intent_id,omitempty"`
	Description    string   `json:"description,omitempty"`
	Tags           []TagRef `json:"tags,omitempty"`
}

// Phrase is one example (training phrase). Examples with no non-negative intent are unlabeled.
type Phrase struct {
	ID       string             `json:"id,omitempty"`
	Text     string             `json:"text"`
	Intents  []IntentRef        `json:"intents,omitempty"`
	Entities []EntityAnnotation `json:"entities,omitempty"`
	Tags     []TagRef           `json:"tags,omitempty"`
}

// IntentRef labels a phrase. Negative marks a phrase rejected for that intent.
type IntentRef struct {
	IntentID string `json:"intent_id"`
	Negative bool   `json:"negative,omitempty"`
}

// EntityAnnotation marks an entity value inside a phrase.
type EntityAnnotation struct {
	EntityID string    `json:"entity_id"`
	Name     string    `json:"name,omitempty"`
	Text     string    `json:"text"`
	Span     *TextSpan `json:"span,omitempty"`
	Value    string    `json:"value,omitempty"`
	ValueID  string    `json:"value_id,omitempty"`
	Role     string    `json:"role,omitempty"`
}

// TextSpan is [From, To) in the phrase text. HumanFirst's units are ambiguous (characters in
// the schema, UTF-8 bytes in their newer code); training only uses the annotation's text.
type TextSpan struct {
	From int `json:"from_character"`
	To   int `json:"to_character"`
}

// Entity is a named entity with its values (a list or, with IsRegex, regular expressions).
type Entity struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Values  []EntityValue `json:"values,omitempty"`
	IsRegex bool          `json:"is_regex,omitempty"`
}

// EntityValue is one value of an entity and its synonyms.
type EntityValue struct {
	ID       string    `json:"id"`
	KeyValue string    `json:"key_value"`
	Synonyms []Synonym `json:"synonyms,omitempty"`
}

// Synonym is an alternative surface form of an entity value.
type Synonym struct {
	Value string `json:"value"`
}

// Tag is a workspace-level tag.
type Tag struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Color       string `json:"color,omitempty"`
	Description string `json:"description,omitempty"`
}

// TagRef refers to a workspace tag from an intent or phrase.
type TagRef struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// DefaultMaxWorkspaceBytes bounds a decompressed workspace (a guard against gzip bombs).
const DefaultMaxWorkspaceBytes = 1 << 30

// Decompress returns data, gunzipped when it starts with the gzip magic bytes. The magic, not
// the sender's gzip flag, decides, so a mislabelled payload still decodes. The result is
// limited to maxBytes (DefaultMaxWorkspaceBytes when <= 0).
func Decompress(data []byte, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxWorkspaceBytes
	}
	if !bytes.HasPrefix(data, gzipMagic) {
		if int64(len(data)) > maxBytes {
			return nil, dataErrorf("", "workspace is %d bytes, over the %d-byte limit", len(data), maxBytes)
		}
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, dataErrorf("", "bad gzip data: %v", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxBytes+1))
	if err != nil {
		return nil, dataErrorf("", "bad gzip data: %v", err)
	}
	if int64(len(out)) > maxBytes {
		return nil, dataErrorf("", "decompressed workspace is over the %d-byte limit", maxBytes)
	}
	return out, nil
}

// ParseWorkspace decodes HumanFirst JSON (gzip accepted) and validates it: a single JSON
// object, ids present and unique, every label naming a known intent, no cycle among parents,
// non-empty phrase texts, sane spans. Errors wrap ErrInvalidWorkspace and say where.
func ParseWorkspace(data []byte) (*Workspace, error) {
	raw, err := Decompress(data, 0)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var ws Workspace
	if err := dec.Decode(&ws); err != nil {
		return nil, jsonError(raw, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, dataErrorf("", "unexpected data after the top-level object")
	}
	if err := ws.validate(); err != nil {
		return nil, err
	}
	return &ws, nil
}

// ReadWorkspaceFile reads and parses a HumanFirst JSON file (plain or gzip).
func ReadWorkspaceFile(path string) (*Workspace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read workspace: %w", err)
	}
	ws, err := ParseWorkspace(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ws, nil
}

// jsonError turns encoding/json errors into DataErrors with a byte offset or field path.
func jsonError(raw []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return dataErrorf("", "invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		path := typ.Field
		if path == "" {
			path = "(document)"
		}
		return dataErrorf(path, "expected %s, got JSON %s (byte %d)", typ.Type, typ.Value, typ.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if len(bytes.TrimSpace(raw)) == 0 {
			return dataErrorf("", "empty document")
		}
		return dataErrorf("", "truncated JSON")
	default:
		return dataErrorf("", "%v", err)
	}
}

func (ws *Workspace) validate() error {
	intents := make(map[string]int, len(ws.Intents))
	for i, in := range ws.Intents {
		p := fmt.Sprintf("intents[%d]", i)
		if in.ID == "" {
			return dataErrorf(p+".id", "missing intent id")
		}
		if j, dup := intents[in.ID]; dup {
			return dataErrorf(p+".id", "duplicate intent id %q (also intents[%d])", in.ID, j)
		}
		intents[in.ID] = i
	}
	// Parents: a missing parent is treated as a root (tag filtering on the platform may drop
	// it), but a cycle is malformed.
	for i, in := range ws.Intents {
		seen := map[string]bool{in.ID: true}
		for cur := in.ParentIntentID; cur != ""; {
			if seen[cur] {
				return dataErrorf(fmt.Sprintf("intents[%d].parent_intent_id", i), "intent %q is its own ancestor", in.ID)
			}
			seen[cur] = true
			j, ok := intents[cur]
			if !ok {
				break
			}
			cur = ws.Intents[j].ParentIntentID
		}
	}
	for i, ex := range ws.Examples {
		p := fmt.Sprintf("examples[%d]", i)
		if strings.TrimSpace(ex.Text) == "" && (len(ex.Intents) > 0 || len(ex.Entities) > 0) {
			return dataErrorf(p+".text", "empty text in a labeled example")
		}
		for j, ref := range ex.Intents {
			if ref.IntentID == "" {
				return dataErrorf(fmt.Sprintf("%s.intents[%d].intent_id", p, j), "missing intent id")
			}
			if _, ok := intents[ref.IntentID]; !ok {
				return dataErrorf(fmt.Sprintf("%s.intents[%d].intent_id", p, j), "unknown intent %q", ref.IntentID)
			}
		}
		for j, a := range ex.Entities {
			if a.Span != nil && (a.Span.From < 0 || a.Span.To < a.Span.From) {
				return dataErrorf(fmt.Sprintf("%s.entities[%d].span", p, j), "bad span [%d, %d)", a.Span.From, a.Span.To)
			}
		}
	}
	entities := make(map[string]bool, len(ws.Entities))
	for i, e := range ws.Entities {
		p := fmt.Sprintf("entities[%d]", i)
		if e.ID == "" {
			return dataErrorf(p+".id", "missing entity id")
		}
		if entities[e.ID] {
			return dataErrorf(p+".id", "duplicate entity id %q", e.ID)
		}
		entities[e.ID] = true
	}
	return nil
}

// FullName returns the intent's name prefixed by its ancestors' names, joined by delim. It
// returns "" for an unknown id.
func (ws *Workspace) FullName(id, delim string) string {
	byID := make(map[string]*Intent, len(ws.Intents))
	for i := range ws.Intents {
		byID[ws.Intents[i].ID] = &ws.Intents[i]
	}
	return fullName(byID, id, delim)
}

func fullName(byID map[string]*Intent, id, delim string) string {
	var parts []string
	seen := map[string]bool{}
	for cur := id; cur != "" && !seen[cur]; {
		seen[cur] = true
		in, ok := byID[cur]
		if !ok {
			break
		}
		name := in.Name
		if name == "" {
			name = in.ID
		}
		parts = append(parts, name)
		cur = in.ParentIntentID
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, delim)
}
