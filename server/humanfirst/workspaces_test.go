package humanfirst

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
	"github.com/infergo/infergo/server/humanfirst/pb/configpb"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
)

func TestWorkspacesFlow(t *testing.T) {
	ts := startServer(t, Config{Embedder: (&intenttest.HashEmbedder{}).Provider()}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)

	list, err := c.workspaces.ListWorkspaces(ctx, &integrationpb.ListWorkspacesRequest{})
	if err != nil || len(list.GetWorkspaces()) != 0 {
		t.Fatalf("empty list: %v, %v", list, err)
	}
	created, err := c.workspaces.CreateWorkspace(ctx, &integrationpb.CreateWorkspaceRequest{
		Workspace: &integrationpb.Workspace{Name: "Support bot", Description: "the help desk"}})
	if err != nil || created.GetId() != "Support bot" || created.GetName() != "Support bot" || created.GetDescription() != "the help desk" {
		t.Fatalf("create: %v, %v", created, err)
	}
	if _, err := c.workspaces.CreateWorkspace(ctx, &integrationpb.CreateWorkspaceRequest{Workspace: &integrationpb.Workspace{Name: "Support bot"}}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("duplicate create: %v", err)
	}
	got, err := c.workspaces.GetWorkspace(ctx, &integrationpb.GetWorkspaceRequest{WorkspaceId: "Support bot"})
	if err != nil || got.GetDescription() != "the help desk" {
		t.Errorf("get: %v, %v", got, err)
	}
	if _, err := c.workspaces.GetWorkspace(ctx, &integrationpb.GetWorkspaceRequest{WorkspaceId: "missing"}); status.Code(err) != codes.NotFound {
		t.Errorf("get missing: %v", err)
	}

	// Never imported: exports as an empty HumanFirst workspace with its name.
	ex, err := c.workspaces.ExportWorkspace(ctx, &integrationpb.ExportWorkspaceRequest{WorkspaceId: "Support bot"})
	if err != nil {
		t.Fatal(err)
	}
	if ws, err := intent.ParseWorkspace(ex.GetData()); err != nil || ws.Name != "Support bot" || len(ws.Intents) != 0 {
		t.Errorf("empty export %q: %v", ex.GetData(), err)
	}

	// Import as Studio does (parameters first), export it back byte for byte.
	params, err := c.workspaces.GetImportParameters(ctx, &integrationpb.GetImportParametersRequest{WorkspaceId: "Support bot"})
	if err != nil || params.GetDataFormat() != configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON || !params.GetFormatOptions().GetGzipEncoding() {
		t.Fatalf("import parameters %v, %v", params, err)
	}
	if _, err := c.workspaces.ImportWorkspace(ctx, &integrationpb.ImportWorkspaceRequest{WorkspaceId: "Support bot",
		DataFormat: params.GetDataFormat(), FormatOptions: params.GetFormatOptions(), Data: gzipBytes(t, intenttest.SpecWorkspace)}); err != nil {
		t.Fatal(err)
	}
	ex, err = c.workspaces.ExportWorkspace(ctx, &integrationpb.ExportWorkspaceRequest{WorkspaceId: "Support bot"})
	if err != nil {
		t.Fatal(err)
	}
	if ex.GetDataFormat() != configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON || ex.GetFormatOptions().GetGzipEncoding() ||
		!bytes.Equal(ex.GetData(), intenttest.SpecWorkspace) {
		t.Errorf("export: format %v, options %v, %d bytes", ex.GetDataFormat(), ex.GetFormatOptions(), len(ex.GetData()))
	}

	// Importing into a new id creates the workspace, named after the export.
	named := []byte(`{"name": "Imported", "intents": [{"id": "a", "name": "A"}], "examples": [{"text": "hi", "intents": [{"intent_id": "a"}]}]}`)
	if _, err := c.workspaces.ImportWorkspace(ctx, &integrationpb.ImportWorkspaceRequest{WorkspaceId: "ws-2", Data: named}); err != nil {
		t.Fatal(err)
	}
	list, err = c.workspaces.ListWorkspaces(ctx, &integrationpb.ListWorkspacesRequest{})
	if err != nil || len(list.GetWorkspaces()) != 2 || list.GetWorkspaces()[1].GetId() != "ws-2" || list.GetWorkspaces()[1].GetName() != "Imported" {
		t.Errorf("list: %v, %v", list, err)
	}

	// Bad imports change nothing.
	for name, req := range map[string]*integrationpb.ImportWorkspaceRequest{
		"bad json":   {WorkspaceId: "ws-2", Data: []byte(`{"intents": 5}`)},
		"csv":        {WorkspaceId: "ws-2", DataFormat: configpb.IntentsDataFormat_INTENTS_FORMAT_CSV_SIMPLE_INTENTS, Data: []byte("a,b")},
		"zip":        {WorkspaceId: "ws-2", FormatOptions: &configpb.IntentsDataOptions{ZipEncoding: true}, Data: []byte("PK")},
		"bad gzip":   {WorkspaceId: "ws-2", Data: []byte{0x1f, 0x8b, 1, 2, 3}},
		"missing id": {Data: named},
	} {
		if _, err := c.workspaces.ImportWorkspace(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	ex, _ = c.workspaces.ExportWorkspace(ctx, &integrationpb.ExportWorkspaceRequest{WorkspaceId: "ws-2"})
	if !bytes.Equal(ex.GetData(), named) {
		t.Errorf("a rejected import changed the data: %s", ex.GetData())
	}

	// Stored on disk where documented, and nothing else lies around.
	if _, err := os.Stat(filepath.Join(ts.dir, "workspaces", "ws-2", "data.json")); err != nil {
		t.Error(err)
	}
	entries, _ := os.ReadDir(filepath.Join(ts.dir, "workspaces", "Support bot"))
	if len(entries) != 2 {
		t.Errorf("workspace directory holds %v", entries)
	}
}

// TestWorkspaceNames: ids that could escape the workspaces directory, or name anything but
// one entry in it, are refused by every RPC that takes an id, and nothing is written.
func TestWorkspaceNames(t *testing.T) {
	ts := startServer(t, Config{Embedder: (&intenttest.HashEmbedder{}).Provider()}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)
	outside := filepath.Join(filepath.Dir(ts.dir), "outside-"+filepath.Base(ts.dir))
	bad := []string{
		"", ".", "..", "../escape", "../../etc/passwd", "a/../../b", "a/b", `a\b`, "/etc/passwd", outside,
		"nul\x00byte", "line\nbreak", "tab\there", "\x7f", ".hidden", ".tmp-meta.json", " padded", "padded ",
		strings.Repeat("x", maxWorkspaceIDBytes+1), strings.Repeat("é", 100), strings.Repeat("../", 5000),
	}
	for _, id := range bad {
		t.Run(fmt.Sprintf("%.20q", id), func(t *testing.T) {
			// An empty id falls back to the name, which is then the id checked.
			_, err := c.workspaces.CreateWorkspace(ctx, &integrationpb.CreateWorkspaceRequest{Workspace: &integrationpb.Workspace{Id: id}})
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("create: %v", err)
			}
			if _, err := c.workspaces.ImportWorkspace(ctx, &integrationpb.ImportWorkspaceRequest{WorkspaceId: id, Data: []byte(`{}`)}); status.Code(err) != codes.InvalidArgument {
				t.Errorf("import: %v", err)
			}
			if _, err := c.workspaces.GetWorkspace(ctx, &integrationpb.GetWorkspaceRequest{WorkspaceId: id}); status.Code(err) != codes.InvalidArgument {
				t.Errorf("get: %v", err)
			}
			if _, err := c.workspaces.ExportWorkspace(ctx, &integrationpb.ExportWorkspaceRequest{WorkspaceId: id}); status.Code(err) != codes.InvalidArgument {
				t.Errorf("export: %v", err)
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(ts.dir, "workspaces")); len(entries) != 0 {
		t.Errorf("workspaces directory holds %v", entries)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("%s was created", outside)
	}
	// Unusual but harmless names are fine.
	// Names that cannot reach gRPC (proto3 strings must be UTF-8) are still refused.
	if err := validWorkspaceID(string([]byte{0xff, 0xfe})); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	for _, id := range []string{"Support bot (FR)", "éàü-日本語", "a.b", "a..b", strings.Repeat("x", maxWorkspaceIDBytes)} {
		if _, err := c.workspaces.CreateWorkspace(ctx, &integrationpb.CreateWorkspaceRequest{Workspace: &integrationpb.Workspace{Id: id}}); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
}

// TestWorkspaceRootConfinement: even if validation were bypassed, the os.Root refuses a path
// out of the directory, also through a symlink planted inside it.
func TestWorkspaceRootConfinement(t *testing.T) {
	dir := t.TempDir()
	w, err := newWorkspaceStore(filepath.Join(dir, "workspaces"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.root.Close()
	if err := w.replace("..", "evil.json", []byte("x")); err == nil {
		t.Error("write through .. succeeded")
	}
	os.Symlink(dir, filepath.Join(dir, "workspaces", "link"))
	if err := w.replace("link", "evil.json", []byte("x")); err == nil {
		t.Error("write through a symlink out of the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "evil.json")); err == nil {
		t.Error("file written outside the root")
	}
}

// TestLargeMessages: requests and responses over gRPC's default 4 MiB limit go through (the
// server allows 200 MiB, as HumanFirst's reference integration).
func TestLargeMessages(t *testing.T) {
	ts := startServer(t, Config{Embedder: (&intenttest.HashEmbedder{}).Provider()}, nil)
	c := ts.clients(t)
	ctx := testCtx(t)
	type ex struct {
		Text string `json:"text"`
	}
	ws := struct {
		Intents  []any `json:"intents"`
		Examples []ex  `json:"examples"`
	}{Intents: []any{}}
	for i := range 120000 {
		ws.Examples = append(ws.Examples, ex{Text: fmt.Sprintf("unlabeled phrase number %d of a large export", i)})
	}
	data, _ := json.Marshal(ws)
	if len(data) < 6<<20 {
		t.Fatalf("only %d bytes", len(data))
	}
	if _, err := c.workspaces.ImportWorkspace(ctx, &integrationpb.ImportWorkspaceRequest{WorkspaceId: "big", Data: data}); err != nil {
		t.Fatal(err)
	}
	out, err := c.workspaces.ExportWorkspace(ctx, &integrationpb.ExportWorkspaceRequest{WorkspaceId: "big"})
	if err != nil || len(out.GetData()) != len(data) {
		t.Fatalf("export: %d bytes, %v", len(out.GetData()), err)
	}
}
