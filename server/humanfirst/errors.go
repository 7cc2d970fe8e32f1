package humanfirst

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/runtime/sched"
)

// Errors the services return. Handlers return plain (wrapped) errors; the error interceptor
// turns every error into a gRPC status through codeTable, the one place codes are chosen.
var (
	// ErrNotFound: no such model or workspace.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: CreateWorkspace for an existing id.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: a request field this package rejects (format, id, batch size).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNoEmbedder: no embedding model is being served right now.
	ErrNoEmbedder = errors.New("no embedding model is loaded")
	// ErrEmbedderChanged: the model was trained on another embedding model than the one
	// served now; its classifier cannot read the new vectors. Retrain it.
	ErrEmbedderChanged = errors.New("model was trained with a different embedding model")
	// errPanic: a handler panicked (recovered; the server keeps running).
	errPanic = errors.New("internal error")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...))
}

// codeTable maps error kinds to gRPC codes, first match wins. Kinds come from this package and
// from the layers below (pipelines, scheduler, intent, context).
var codeTable = []struct {
	match func(error) bool
	code  codes.Code
}{
	{is(context.Canceled), codes.Canceled},
	{is(context.DeadlineExceeded), codes.DeadlineExceeded},
	{is(ErrInvalidArgument), codes.InvalidArgument},
	{is(intent.ErrInvalidWorkspace), codes.InvalidArgument},
	{as[*pipelines.ValidationError], codes.InvalidArgument},
	{is(pipelines.ErrEmpty), codes.InvalidArgument},
	{is(ErrNotFound), codes.NotFound},
	{is(ErrAlreadyExists), codes.AlreadyExists},
	{is(ErrEmbedderChanged), codes.FailedPrecondition},
	{is(sched.ErrOverloaded), codes.ResourceExhausted},
	{is(sched.ErrClosed), codes.Unavailable},
	{is(ErrNoEmbedder), codes.Unavailable},
	{is(intent.ErrBadModel), codes.DataLoss},
	{is(errPanic), codes.Internal},
	{as[*intent.PanicError], codes.Internal},
}

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func as[T error](err error) bool {
	var t T
	return errors.As(err, &t)
}

// toStatus converts a handler error to a gRPC status. Status errors pass through; client
// errors keep their message (it tells the caller what to fix); internal errors get a generic
// message, their details go to the log.
func toStatus(err error) *status.Status {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	code := codes.Internal
	for _, row := range codeTable {
		if row.match(err) {
			code = row.code
			break
		}
	}
	switch code {
	case codes.Internal, codes.DataLoss:
		return status.New(code, "internal error (details in the server log)")
	case codes.Canceled:
		return status.New(code, "request cancelled by the client")
	case codes.DeadlineExceeded:
		return status.New(code, "deadline exceeded")
	}
	return status.New(code, err.Error())
}
