//go:build !linux

package server

import (
	"context"

	"github.com/valyala/fasthttp"
)

// watchDisconnect is a no-op off Linux: requests of departed clients run to their deadline.
func watchDisconnect(*fasthttp.RequestCtx, context.CancelCauseFunc) func() { return func() {} }
