package humanfirst

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/server/humanfirst/pb/configpb"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
)

// Workspaces live under <data dir>/workspaces/<id>/ as meta.json (id, name, description) and
// data.json (the last import, HumanFirst JSON, decompressed). Ids come from clients and become
// directory names, so they are validated (validWorkspaceID) and every file operation also goes
// through an os.Root, which refuses paths that leave the directory even if validation missed
// one.

const (
	wsMetaFile = "meta.json"
	wsDataFile = "data.json"
	// maxWorkspaceIDBytes bounds ids well under file-name limits (255 bytes on most systems).
	maxWorkspaceIDBytes = 128
)

type workspaceMeta struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

type workspaceStore struct {
	root *os.Root
	mu   sync.Mutex // serialises writers; files are replaced by rename, so readers need no lock
}

func newWorkspaceStore(dir string) (*workspaceStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("humanfirst: workspaces directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("humanfirst: workspaces directory: %w", err)
	}
	return &workspaceStore{root: root}, nil
}

// validWorkspaceID rejects ids that could name anything but one directory directly inside the
// workspaces directory: empty or over-long ids, invalid UTF-8, NUL and other control
// characters, path separators, "." and "..", leading dots (hidden and temporary files) and
// leading or trailing spaces.
func validWorkspaceID(id string) error {
	switch {
	case id == "":
		return invalidf("empty workspace id")
	case len(id) > maxWorkspaceIDBytes:
		return invalidf("workspace id of %d bytes (at most %d)", len(id), maxWorkspaceIDBytes)
	case !utf8.ValidString(id):
		return invalidf("workspace id is not valid UTF-8")
	case strings.ContainsAny(id, `/\`):
		return invalidf("workspace id %q contains a path separator", id)
	case strings.HasPrefix(id, "."):
		return invalidf("workspace id %q starts with a dot", id)
	case strings.TrimSpace(id) != id:
		return invalidf("workspace id %q starts or ends with spaces", id)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return invalidf("workspace id %q contains control characters", id)
	case !filepath.IsLocal(id):
		return invalidf("workspace id %q is not a plain name", id)
	}
	return nil
}

func (w *workspaceStore) meta(id string) (*workspaceMeta, error) {
	if err := validWorkspaceID(id); err != nil {
		return nil, err
	}
	b, err := w.root.ReadFile(id + "/" + wsMetaFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundf("workspace %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read workspace %q: %w", id, err)
	}
	var m workspaceMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read workspace %q: %w", id, err)
	}
	return &m, nil
}

func (w *workspaceStore) list() ([]*workspaceMeta, error) {
	entries, err := fs.ReadDir(w.root.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	var out []*workspaceMeta
	for _, e := range entries {
		if !e.IsDir() || validWorkspaceID(e.Name()) != nil {
			continue
		}
		if m, err := w.meta(e.Name()); err == nil {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *workspaceMeta) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// create makes a new workspace; ErrAlreadyExists if the id is taken.
func (w *workspaceStore) create(m workspaceMeta) error {
	if err := validWorkspaceID(m.ID); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.createLocked(m)
}

func (w *workspaceStore) createLocked(m workspaceMeta) error {
	if err := w.root.Mkdir(m.ID, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if _, merr := w.meta(m.ID); merr == nil {
				return fmt.Errorf("%w: workspace %q", ErrAlreadyExists, m.ID)
			}
			// A directory without metadata is a create that crashed half-way: finish it.
		} else {
			return fmt.Errorf("create workspace %q: %w", m.ID, err)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("create workspace %q: %w", m.ID, err)
	}
	return w.replace(m.ID, wsMetaFile, b)
}

// replace writes id/name atomically: a temporary file in the same directory, then a rename.
func (w *workspaceStore) replace(id, name string, data []byte) error {
	tmp := fmt.Sprintf("%s/.tmp-%s", id, name)
	f, err := w.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write workspace %q: %w", id, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.root.Rename(tmp, id+"/"+name)
	}
	if err != nil {
		w.root.Remove(tmp)
		return fmt.Errorf("write workspace %q: %w", id, err)
	}
	return nil
}

// importData stores a validated HumanFirst JSON export, creating the workspace if needed.
func (w *workspaceStore) importData(id string, raw []byte, ws *intent.Workspace) error {
	if err := validWorkspaceID(id); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.meta(id); errors.Is(err, ErrNotFound) {
		name := strings.TrimSpace(ws.Name)
		if name == "" {
			name = id
		}
		if err := w.createLocked(workspaceMeta{ID: id, Name: name, Description: ws.Description}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return w.replace(id, wsDataFile, raw)
}

// exportData returns the stored HumanFirst JSON; a workspace never imported exports as an
// empty workspace carrying its name.
func (w *workspaceStore) exportData(id string) ([]byte, error) {
	m, err := w.meta(id)
	if err != nil {
		return nil, err
	}
	b, err := w.root.ReadFile(id + "/" + wsDataFile)
	if errors.Is(err, fs.ErrNotExist) {
		return json.Marshal(map[string]any{"name": m.Name, "description": m.Description,
			"intents": []any{}, "examples": []any{}, "entities": []any{}, "tags": []any{}})
	}
	if err != nil {
		return nil, fmt.Errorf("export workspace %q: %w", id, err)
	}
	return b, nil
}

type workspacesService struct {
	integrationpb.UnimplementedWorkspacesServer
	s *Server
}

func (m *workspaceMeta) proto() *integrationpb.Workspace {
	return &integrationpb.Workspace{Id: m.ID, Name: m.Name, Description: m.Description}
}

// ListWorkspaces lists the stored workspaces by id.
func (x workspacesService) ListWorkspaces(context.Context, *integrationpb.ListWorkspacesRequest) (*integrationpb.ListWorkspacesResponse, error) {
	metas, err := x.s.workspaces.list()
	if err != nil {
		return nil, err
	}
	out := &integrationpb.ListWorkspacesResponse{}
	for _, m := range metas {
		out.Workspaces = append(out.Workspaces, m.proto())
	}
	return out, nil
}

// GetWorkspace describes one workspace.
func (x workspacesService) GetWorkspace(_ context.Context, req *integrationpb.GetWorkspaceRequest) (*integrationpb.Workspace, error) {
	m, err := x.s.workspaces.meta(req.GetWorkspaceId())
	if err != nil {
		return nil, err
	}
	return m.proto(), nil
}

// CreateWorkspace creates an empty workspace. Its id is the requested id, or else its name.
func (x workspacesService) CreateWorkspace(_ context.Context, req *integrationpb.CreateWorkspaceRequest) (*integrationpb.Workspace, error) {
	in := req.GetWorkspace()
	m := workspaceMeta{ID: in.GetId(), Name: in.GetName(), Description: in.GetDescription()}
	if m.ID == "" {
		m.ID = m.Name
	}
	if m.Name == "" {
		m.Name = m.ID
	}
	if err := x.s.workspaces.create(m); err != nil {
		return nil, err
	}
	return m.proto(), nil
}

// importFormat is what GetImportParameters asks for: gzipped HumanFirst JSON.
func importFormat() (configpb.IntentsDataFormat, *configpb.IntentsDataOptions) {
	return configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON, &configpb.IntentsDataOptions{GzipEncoding: true}
}

// GetImportParameters asks for gzipped HumanFirst JSON.
func (x workspacesService) GetImportParameters(_ context.Context, req *integrationpb.GetImportParametersRequest) (*integrationpb.GetImportParametersResponse, error) {
	f, o := importFormat()
	return &integrationpb.GetImportParametersResponse{DataFormat: f, FormatOptions: o}, nil
}

// ImportWorkspace validates and stores a Studio export, replacing the workspace's data (and
// creating the workspace when the id is new).
func (x workspacesService) ImportWorkspace(_ context.Context, req *integrationpb.ImportWorkspaceRequest) (*integrationpb.ImportWorkspaceResponse, error) {
	if err := validWorkspaceID(req.GetWorkspaceId()); err != nil {
		return nil, err
	}
	if err := checkFormat(req.GetDataFormat(), req.GetFormatOptions()); err != nil {
		return nil, err
	}
	raw, err := intent.Decompress(req.GetData(), x.s.cfg.MaxWorkspaceBytes)
	if err != nil {
		return nil, err
	}
	ws, err := intent.ParseWorkspace(raw)
	if err != nil {
		return nil, err
	}
	if err := x.s.workspaces.importData(req.GetWorkspaceId(), raw, ws); err != nil {
		return nil, err
	}
	return &integrationpb.ImportWorkspaceResponse{}, nil
}

// ExportWorkspace returns the workspace as plain HumanFirst JSON, and says so in the response.
func (x workspacesService) ExportWorkspace(_ context.Context, req *integrationpb.ExportWorkspaceRequest) (*integrationpb.ExportWorkspaceResponse, error) {
	data, err := x.s.workspaces.exportData(req.GetWorkspaceId())
	if err != nil {
		return nil, err
	}
	return &integrationpb.ExportWorkspaceResponse{
		DataFormat:    configpb.IntentsDataFormat_INTENTS_FORMAT_HF_JSON,
		FormatOptions: &configpb.IntentsDataOptions{},
		Data:          data,
	}, nil
}
