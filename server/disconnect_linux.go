//go:build linux

package server

import (
	"context"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// watchDisconnect cancels a request's context when its client hangs up, so an abandoned
// request stops using the model (the scheduler drops its queued sequences). fasthttp has no
// per-request close notification (RequestCtx.Done fires only at shutdown), so while the
// handler runs one goroutine waits on the netpoller for the connection to become readable
// and peeks at it without consuming anything:
//
//   - EOF or a reset: the client is gone → cancel with errClientGone (net/http's server does
//     the same on EOF, so a client that half-closes after sending is treated as gone there too);
//   - bytes: a pipelined request, the client is alive → stop watching.
//
// The returned stop wakes the goroutine through a read deadline (RequestCtx.SetReadDeadline,
// which fasthttp resets after the handler) and waits for it, so nothing touches the
// connection after the handler returns. Cost: one goroutine and one recv(MSG_PEEK) per
// inference request. Connections that are not plain sockets (TLS, in-memory) are not watched.
func watchDisconnect(rc *fasthttp.RequestCtx, cancel context.CancelCauseFunc) (stop func()) {
	sc, ok := rc.Conn().(syscall.Conn)
	if !ok {
		return func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	// Lift fasthttp's read deadline (armed at the request's first byte) for the handler's
	// duration, else the watch would end when ReadTimeout passes mid-inference.
	if rc.SetReadDeadline(time.Time{}) != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [1]byte
		_ = raw.Read(func(fd uintptr) bool {
			for {
				n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					return false // nothing yet: wait for readability
				case err != nil || n == 0:
					cancel(errClientGone)
				}
				return true
			}
		})
	}()
	return func() {
		if rc.SetReadDeadline(time.Now()) != nil {
			// fasthttp refused (deadline updates disabled): set it on the socket directly;
			// the next request's idle deadline replaces it.
			_ = rc.Conn().SetReadDeadline(time.Now())
		}
		<-done
	}
}
