package server

import (
	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// handleInfo is TEI's /info, with TEI's keys where the meaning is the same plus ours (task,
// dimensions, pooling, normalize, device, compute_type, limits). 503 until a model is served.
func (s *Server) handleInfo(rc *fasthttp.RequestCtx, st *reqState) {
	m := s.holder.current()
	if m == nil {
		msg := msgLoading
		if err := s.holder.loadError(); err != nil {
			msg = err.Error()
		}
		s.writeError(rc, st, newError(kindUnavailable, msg))
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = s.appendInfo(*b, m)
	writeJSON(rc, fasthttp.StatusOK, *b)
}

func (s *Server) appendInfo(dst []byte, m *pipelines.Model) []byte {
	in := m.Info
	str := func(key, v string) {
		dst = append(dst, ',', '"')
		dst = append(dst, key...)
		dst = append(dst, '"', ':')
		dst = appendJSONString(dst, v)
	}
	num := func(key string, v int) {
		dst = append(dst, ',', '"')
		dst = append(dst, key...)
		dst = append(dst, '"', ':')
		dst = appendInt(dst, v)
	}
	dst = append(dst, `{"model_id":`...)
	dst = appendJSONString(dst, in.ModelID)
	dst = append(dst, `,"model_sha":`...)
	if in.Revision == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, in.Revision)
	}
	task := s.cfg.Task
	if task == "" {
		task = in.Task
	}
	switch {
	case m.Embedder != nil:
		pooling := in.Pooling
		if pooling == "" {
			pooling = "none"
		}
		dst = append(dst, `,"model_type":{"embedding":{"pooling":`...)
		dst = appendJSONString(dst, pooling)
		dst = append(dst, `}}`...)
	case len(in.Labels) > 0:
		dst = append(dst, `,"model_type":{"classifier":{"id2label":{`...)
		for i, l := range in.Labels {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = appendInt(dst, i)
			dst = append(dst, '"', ':')
			dst = appendJSONString(dst, l)
		}
		dst = append(dst, `},"label2id":{`...)
		for i, l := range in.Labels {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, l)
			dst = append(dst, ':')
			dst = appendInt(dst, i)
		}
		dst = append(dst, `}}}`...)
	}
	str("task", task)
	num("dimensions", in.Dimensions)
	num("max_input_length", in.MaxInputLength)
	str("pooling", in.Pooling)
	dst = append(dst, `,"normalize":`...)
	dst = appendBool(dst, in.Normalize)
	num("max_concurrent_requests", in.MaxConcurrentRequests)
	num("max_batch_tokens", in.MaxBatchTokens)
	num("max_batch_requests", in.MaxBatchSize)
	num("max_client_batch_size", s.maxClientBatch(m))
	dst = append(dst, `,"auto_truncate":true`...)
	num("payload_limit", s.cfg.MaxBodyBytes)
	num("request_timeout_ms", int(s.cfg.RequestTimeout.Milliseconds()))
	str("device", in.Device)
	str("compute_type", s.cfg.ComputeType)
	str("version", s.cfg.Version)
	return append(dst, '}')
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}
