// Package humanfirst serves HumanFirst's custom-integration gRPC services (package
// zia.ai.external_integration.v1alpha1: Discovery, Models, Workspaces) over mutual TLS, so
// HumanFirst Studio can train intent classifiers on Infergo's served embedding model, classify
// and embed phrases with them, and exchange workspaces.
//
// Wiring (cmd/infergo):
//
//	creds, err := humanfirst.LoadCredentials("mtls-credentials.json")
//	srv, err := humanfirst.New(humanfirst.Config{Credentials: creds, DataDir: dir, Embedder: provider, Logger: log})
//	ln, err := net.Listen("tcp", ":8443")
//	go srv.Serve(ln)
//	…
//	srv.Shutdown(ctx) // graceful, then hard when ctx ends
//
// Training, classification and evaluation live in pipelines/intent; this package is the
// transport: request validation, the model and workspace stores under the data directory, the
// mapping of errors to gRPC codes (errors.go), interceptors for logging and panic recovery,
// health and reflection. The generated protocol code is in pb/ (make proto).
package humanfirst
