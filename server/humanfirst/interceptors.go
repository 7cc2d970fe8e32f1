package humanfirst

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The interceptors run outermost first: logInterceptor (sees the final status),
// errorInterceptor (maps errors to codes through codeTable), recoverInterceptor (turns a
// panic into an error so one bad request never takes the server down).

func (s *Server) logInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.OK, codes.Canceled:
	case codes.Internal, codes.DataLoss, codes.Unknown:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", info.FullMethod),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
	}
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			attrs = append(attrs, slog.String("client", ti.State.PeerCertificates[0].Subject.CommonName))
		}
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	s.log.LogAttrs(ctx, level, "humanfirst: rpc", attrs...)
	return resp, err
}

// errorInterceptor converts handler errors to gRPC statuses. Internal errors are logged here
// with their full text, since the client only gets a generic message.
func (s *Server) errorInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err == nil {
		return resp, nil
	}
	st := toStatus(err)
	if c := st.Code(); c == codes.Internal || c == codes.DataLoss {
		s.log.ErrorContext(ctx, "humanfirst: internal error", "method", info.FullMethod, "err", err.Error())
	}
	return nil, st.Err()
}

func (s *Server) recoverInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "humanfirst: handler panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: panic in %s", errPanic, info.FullMethod)
		}
	}()
	return handler(ctx, req)
}
