package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// HealthcheckCmd probes a running server's /health, for container HEALTHCHECKs: the slim
// images have no curl, and the binary is already there.
type HealthcheckCmd struct {
	URL     string        `help:"URL to probe (default: http://127.0.0.1:$PORT/health, PORT defaulting to 8000)."`
	Timeout time.Duration `default:"3s" help:"How long to wait for the answer."`
}

// Run implements the command: exit 0 when the server answers 200, 1 otherwise.
func (c *HealthcheckCmd) Run() error {
	url := c.URL
	if url == "" {
		port := 8000
		if p, err := strconv.Atoi(os.Getenv("PORT")); err == nil && p > 0 {
			port = p
		}
		url = fmt.Sprintf("http://127.0.0.1:%d/health", port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	return nil
}
