package humanfirst

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/server/humanfirst/pb/integrationpb"
)

// EmbedderProvider returns the embedding model being served now. It is called on every
// request, so the served model can be swapped while the server runs; it returns an error when
// no model is ready (the RPC then fails with UNAVAILABLE).
type EmbedderProvider func() (pipelines.Embedder, pipelines.Info, error)

// Config configures the HumanFirst integration server. Zero values take the defaults listed.
type Config struct {
	// Credentials are the parsed mtls-credentials.json; when nil, CredentialsFile is loaded.
	Credentials     *Credentials
	CredentialsFile string
	// DataDir holds trained models (DataDir/models) and workspaces (DataDir/workspaces).
	DataDir string
	// Embedder supplies the embedding model (required).
	Embedder EmbedderProvider
	// Logger receives one line per RPC and training summaries (default slog.Default()).
	Logger *slog.Logger
	// MaxConcurrentTrainings bounds TrainModel calls running at once; further calls wait for
	// a slot until their deadline (default 2).
	MaxConcurrentTrainings int
	// MaxConcurrentModels is advertised to HumanFirst in GetCapabilities; the platform then
	// keeps at most this many models training or loaded here (default 0: no limit).
	MaxConcurrentModels uint32
	// ClassifyBatchSize is the most examples per Classify request, advertised in
	// GetCapabilities and each Model (default 1000).
	ClassifyBatchSize int
	// EmbedBatchSize is the most examples per Embed request (default 1000).
	EmbedBatchSize int
	// MaxMessageBytes bounds gRPC messages both ways (default 200 MiB, as HumanFirst's
	// reference integration: workspace exports are large).
	MaxMessageBytes int
	// MaxWorkspaceBytes bounds a decompressed workspace (default 512 MiB).
	MaxWorkspaceBytes int64
	// MaxLoadedModels bounds the classifiers kept in memory; the least recently used are
	// dropped and reloaded from disk on demand (default 64).
	MaxLoadedModels int
	// EmbedCacheBytes bounds the cache of phrase embeddings that makes repeated trainings
	// on the same phrases (k-fold evaluation) cheap (default 256 MiB; negative disables).
	EmbedCacheBytes int64
	// MinScore drops intent matches below it from Classify responses (default 0.01, as
	// HumanFirst's reference integration; negative keeps all).
	MinScore float32
	// Train tunes training (head, seed, epochs…); see intent.TrainOptions.
	Train intent.TrainOptions
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxConcurrentTrainings <= 0 {
		c.MaxConcurrentTrainings = 2
	}
	if c.ClassifyBatchSize <= 0 {
		c.ClassifyBatchSize = 1000
	}
	if c.EmbedBatchSize <= 0 {
		c.EmbedBatchSize = 1000
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 200 << 20
	}
	if c.MaxWorkspaceBytes <= 0 {
		c.MaxWorkspaceBytes = 512 << 20
	}
	if c.MaxLoadedModels <= 0 {
		c.MaxLoadedModels = 64
	}
	if c.EmbedCacheBytes == 0 {
		c.EmbedCacheBytes = 256 << 20
	}
	if c.MinScore == 0 {
		c.MinScore = 0.01
	}
	return c
}

// Server serves HumanFirst's Discovery, Models and Workspaces services over mutual TLS, plus
// gRPC health and reflection.
type Server struct {
	cfg        Config
	log        *slog.Logger
	grpc       *grpc.Server
	health     *health.Server
	models     *modelStore
	workspaces *workspaceStore
	trainSlots chan struct{}
	training   atomic.Int32 // TrainModel calls past admission (tests watch it)
	closeOnce  sync.Once

	cacheMu  sync.Mutex
	cacheKey string
	cache    *intent.VectorCache
}

// services are the names registered for health checking.
var services = []string{
	integrationpb.Discovery_ServiceDesc.ServiceName,
	integrationpb.Models_ServiceDesc.ServiceName,
	integrationpb.Workspaces_ServiceDesc.ServiceName,
}

// New checks the configuration, prepares the data directory and builds the gRPC server.
// Nothing listens until Serve.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Embedder == nil {
		return nil, errors.New("humanfirst: Config.Embedder is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("humanfirst: Config.DataDir is required")
	}
	creds := cfg.Credentials
	if creds == nil {
		if cfg.CredentialsFile == "" {
			return nil, errors.New("humanfirst: Config.Credentials or CredentialsFile is required")
		}
		var err error
		if creds, err = LoadCredentials(cfg.CredentialsFile); err != nil {
			return nil, err
		}
	}
	for _, w := range creds.expiryWarnings(time.Now()) {
		cfg.Logger.Warn("humanfirst: certificate not valid now", "problem", w)
	}
	models, err := newModelStore(filepath.Join(cfg.DataDir, "models"), cfg.MaxLoadedModels, cfg.Logger)
	if err != nil {
		return nil, err
	}
	workspaces, err := newWorkspaceStore(filepath.Join(cfg.DataDir, "workspaces"))
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		models:     models,
		workspaces: workspaces,
		trainSlots: make(chan struct{}, cfg.MaxConcurrentTrainings),
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(creds.TLSConfig())),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		// TrainModel can run for minutes on an idle connection: let the platform's client
		// keepalive pings through, and probe clients that vanished.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.ChainUnaryInterceptor(s.logInterceptor, s.errorInterceptor, s.recoverInterceptor),
	)
	integrationpb.RegisterDiscoveryServer(s.grpc, discoveryService{s: s})
	integrationpb.RegisterModelsServer(s.grpc, modelsService{s: s})
	integrationpb.RegisterWorkspacesServer(s.grpc, workspacesService{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	for _, name := range append([]string{""}, services...) {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return s, nil
}

// Serve accepts connections on ln until Stop or GracefulStop; it returns nil after either.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("humanfirst: gRPC server ready", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir)
	if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("humanfirst: serve: %w", err)
	}
	return nil
}

// GracefulStop reports NOT_SERVING to health checks, stops accepting connections and waits
// for in-flight RPCs, trainings included (they can take minutes: use Shutdown to bound it).
func (s *Server) GracefulStop() {
	s.health.Shutdown()
	s.grpc.GracefulStop()
	s.close()
}

// Stop closes every connection at once. In-flight RPCs see their contexts cancelled; a
// training stops and leaves nothing on disk.
func (s *Server) Stop() {
	s.health.Shutdown()
	s.grpc.Stop()
	s.close()
}

func (s *Server) close() {
	s.closeOnce.Do(func() { s.workspaces.root.Close() })
}

// Shutdown stops gracefully, falling back to Stop when ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Stop()
		<-done
		return ctx.Err()
	}
}

// embedder returns the served embedding model, or ErrNoEmbedder.
func (s *Server) embedder() (pipelines.Embedder, pipelines.Info, error) {
	emb, info, err := s.cfg.Embedder()
	if err != nil {
		return nil, info, fmt.Errorf("%w: %v", ErrNoEmbedder, err)
	}
	if emb == nil {
		return nil, info, ErrNoEmbedder
	}
	return emb, info, nil
}

// embedConfig returns how to reach emb: chunks the scheduler can batch and the vector cache
// of that model (a new model starts a new cache).
func (s *Server) embedConfig(info pipelines.Info) intent.EmbedConfig {
	cfg := s.cfg.Train.Embed.Fit(info)
	if s.cfg.EmbedCacheBytes > 0 {
		key := fmt.Sprintf("%s@%s/%d", info.ModelID, info.Revision, info.Dimensions)
		s.cacheMu.Lock()
		if s.cache == nil || s.cacheKey != key {
			s.cache, s.cacheKey = intent.NewVectorCache(s.cfg.EmbedCacheBytes), key
		}
		cfg.Cache = s.cache
		s.cacheMu.Unlock()
	}
	return cfg
}

// acquireTraining waits for a training slot or for ctx to end.
func (s *Server) acquireTraining(ctx context.Context) (release func(), err error) {
	select {
	case s.trainSlots <- struct{}{}:
		s.training.Add(1)
		return func() { s.training.Add(-1); <-s.trainSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// removeStaleTemps deletes interrupted saves (TempPrefix directories) older than an hour;
// younger ones may belong to a save in progress in another process sharing the directory.
func removeStaleTemps(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if len(e.Name()) < len(intent.TempPrefix) || e.Name()[:len(intent.TempPrefix)] != intent.TempPrefix {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err == nil {
				log.Info("humanfirst: removed an interrupted model save", "dir", e.Name())
			}
		}
	}
}
