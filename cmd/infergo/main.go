// Command infergo serves Hugging Face-style ONNX models over HTTP (api-inference-community,
// TEI and OpenAI-compatible routes) and gRPC, and manages the model cache.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// CLI is the command tree. Each command is a struct with a Run method; its flags carry their
// environment variable fallbacks.
type CLI struct {
	Log LogFlags `embed:"" prefix:"log-"`

	Serve      ServeCmd       `cmd:"" help:"Serve a model over HTTP (api-inference-community, TEI and OpenAI routes)."`
	Bench      BenchCmd       `cmd:"" help:"Load-test a running server (closed or open loop)."`
	Pull       PullCmd        `cmd:"" help:"Download a model from the Hugging Face Hub (HF_ENDPOINT) into the cache."`
	Cache      CacheCmd       `cmd:"" help:"List or clean the Hugging Face model cache."`
	HumanFirst HumanFirstCmd  `cmd:"" name:"humanfirst" help:"HumanFirst integration tools."`
	Health     HealthcheckCmd `cmd:"" name:"healthcheck" help:"Exit 0 when a running server's /health answers 200 (container HEALTHCHECK)."`
	Version    VersionCmd     `cmd:"" help:"Print the version."`
}

// LogFlags configure the process logger.
type LogFlags struct {
	Level  string `default:"info" enum:"debug,info,warn,error" env:"INFERGO_LOG_LEVEL" help:"Log level (${enum})."`
	Format string `default:"text" enum:"text,json" env:"INFERGO_LOG_FORMAT" help:"Log format (${enum})."`
}

// Logger builds the slog logger the flags describe.
func (l LogFlags) Logger() *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(l.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run implements the command.
func (VersionCmd) Run() error {
	fmt.Println("infergo", version)
	return nil
}

func main() {
	var cli CLI
	ctx := kong.Parse(&cli,
		kong.Name("infergo"),
		kong.Description("High-performance inference server for Hugging Face-style ONNX models."),
		kong.UsageOnError(),
	)
	logger := cli.Log.Logger()
	slog.SetDefault(logger)
	ctx.Bind(logger)
	if err := ctx.Run(); err != nil {
		logger.Error("infergo failed", "err", err)
		os.Exit(1)
	}
}
