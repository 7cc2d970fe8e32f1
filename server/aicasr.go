package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// automatic-speech-recognition on the api-inference-community route. Upstream's order
// (routes.py) is kept: the pipeline must exist (500 otherwise), the body is decoded as audio
// during normalisation (undecodable → 400 {"error":"Malformed soundfile"} without
// x-compute-* headers), then the pipeline runs (x-compute-time/-type on every answer,
// x-compute-audio-length on 200s).
//
// The container takes raw audio bytes only. Like the hosted Inference API, a JSON body
// {"inputs": "<base64 audio>", "parameters": {...}} is accepted too, so clients can ask for
// timestamps, a language or a task; JSON that is not of that shape is decoded as audio and
// fails as upstream does.

// isASR reports whether the request is for speech recognition: the configured task, or the
// served model's when none is configured.
func isASR(task string, m *pipelines.Model) bool {
	if task != "" {
		return task == pipelines.TaskSpeechRecognition
	}
	return m.Info.Task == pipelines.TaskSpeechRecognition
}

func (s *Server) handleASR(ctx context.Context, rc *fasthttp.RequestCtx, st *reqState, m *pipelines.Model) {
	sr := m.SpeechRecognizer
	if sr == nil {
		s.writeError(rc, st, errorf(kindUnsupported, "%s is not a valid pipeline for model : %s", pipelines.TaskSpeechRecognition, m.Info.ModelID))
		return
	}
	body, params := asrBody(rc.PostBody())
	samples, err := sr.DecodeAudio(ctx, body)
	if err != nil {
		s.writeError(rc, st, asrDecodeError(ctx, err))
		return
	}

	opts, herr := asrOptions(params)
	var tr pipelines.Transcript
	var stats pipelines.Stats
	if herr == nil {
		var perr error
		tr, stats, perr = sr.Transcribe(ctx, samples, opts)
		if perr != nil {
			herr = classify(ctx, perr, true)
		}
	}
	h := &rc.Response.Header
	h.Set("x-compute-time", strconv.FormatFloat(time.Since(st.start).Seconds(), 'f', 3, 64))
	h.Set("x-compute-type", s.cfg.ComputeType)
	h.Set("access-control-expose-headers", "x-compute-type, x-compute-time")
	if herr != nil {
		s.writeError(rc, st, herr)
		return
	}
	s.metrics.stats(stats)
	h.Set("x-compute-audio-length", pyFloatString(float64(len(samples))/float64(sr.SamplingRate())))
	b := s.getBuf()
	defer s.putBuf(b)
	*b = appendTranscript((*b)[:0], tr)
	writeJSON(rc, fasthttp.StatusOK, *b)
}

// asrDecodeError maps an audio decoding failure: upstream answers every undecodable body
// with exactly "Malformed soundfile"; a cancelled or timed-out request is reported as such.
func asrDecodeError(ctx context.Context, err error) *httpError {
	if ctx.Err() != nil {
		return classify(ctx, err, true)
	}
	var ve *pipelines.ValidationError
	if errors.Is(err, pipelines.ErrMalformedAudio) || !errors.As(err, &ve) {
		return &httpError{kind: kindInvalid, msg: pipelines.ErrMalformedAudio.Error(), cause: err}
	}
	return classify(ctx, err, true)
}

// asrBody returns the audio bytes and the parameters of a request: the body itself, or the
// base64 "inputs" of a JSON body with the hosted API's shape.
func asrBody(body []byte) ([]byte, *object) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return body, nil
	}
	v, err := parseJSON(trimmed, true)
	if err != nil {
		return body, nil
	}
	o, ok := v.(*object)
	if !ok {
		return body, nil
	}
	in, ok := o.get("inputs")
	if !ok {
		return body, nil
	}
	s, ok := in.(string)
	if !ok {
		return body, nil
	}
	// A data URL ("data:audio/flac;base64,…") is accepted as browsers produce it.
	if i := strings.Index(s, ";base64,"); strings.HasPrefix(s, "data:") && i > 0 {
		s = s[i+len(";base64,"):]
	}
	audio, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if audio, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return body, nil
		}
	}
	params, _ := o.get("parameters")
	p, _ := params.(*object)
	if params != nil && p == nil {
		// Not an object: reported by asrOptions.
		p = &object{keys: []string{"\x00"}, vals: map[string]any{"\x00": params}}
	}
	return audio, p
}

// asrOptions reads the parameters transformers' ASR pipeline takes: return_timestamps,
// chunk_length_s, stride_length_s, and generate_kwargs (or the hosted API's
// generation_parameters) with language, task and max_new_tokens. Anything else is the
// TypeError Python raises for an unknown keyword argument.
func asrOptions(p *object) (pipelines.TranscribeOptions, *httpError) {
	var o pipelines.TranscribeOptions
	if p == nil {
		return o, nil
	}
	for _, k := range p.keys {
		v := p.vals[k]
		var herr *httpError
		switch k {
		case "\x00":
			return o, newError(kindInvalid, "`parameters` must be a JSON object")
		case "return_timestamps":
			switch x := v.(type) {
			case nil:
			case bool:
				if x {
					o.Timestamps = pipelines.TimestampsSegment
				}
			case string:
				switch x {
				case "word":
					o.Timestamps = pipelines.TimestampsWord
				case "char":
					o.Timestamps = pipelines.TimestampsChar
				default:
					herr = errorf(kindInvalid, "`return_timestamps` must be true, false, \"word\" or \"char\", got %q", x)
				}
			default:
				herr = newError(kindInvalid, "`return_timestamps` must be true, false, \"word\" or \"char\"")
			}
		case "chunk_length_s":
			o.ChunkLength, herr = asrSeconds(k, v)
		case "stride_length_s":
			o.StrideLength, herr = asrSeconds(k, v)
		case "generate_kwargs", "generation_parameters":
			herr = asrGenerateKwargs(&o, k, v)
		case "language", "task", "max_new_tokens":
			herr = asrGenerateKwarg(&o, k, v)
		default:
			herr = errorf(kindInvalid, "AutomaticSpeechRecognitionPipeline._sanitize_parameters() got an unexpected keyword argument '%s'", k)
		}
		if herr != nil {
			return o, herr
		}
	}
	return o, nil
}

func asrSeconds(name string, v any) (float64, *httpError) {
	var f float64
	switch x := v.(type) {
	case nil:
		return 0, nil
	case pyInt:
		n, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return 0, errorf(kindInvalid, "`%s` must be a number of seconds", name)
		}
		f = n
	case float64:
		f = x
	default:
		return 0, errorf(kindInvalid, "`%s` must be a number of seconds", name)
	}
	if f <= 0 || f > 3600 || f != f {
		return 0, errorf(kindInvalid, "`%s` must be a positive number of seconds", name)
	}
	return f, nil
}

func asrGenerateKwargs(o *pipelines.TranscribeOptions, name string, v any) *httpError {
	if v == nil {
		return nil
	}
	obj, ok := v.(*object)
	if !ok {
		return errorf(kindInvalid, "`%s` must be a JSON object", name)
	}
	for _, k := range obj.keys {
		if herr := asrGenerateKwarg(o, k, obj.vals[k]); herr != nil {
			return herr
		}
	}
	return nil
}

// asrGenerateKwarg sets one generate() argument; those that do not change greedy decoding
// results are refused rather than ignored, so a request never silently gets something else.
func asrGenerateKwarg(o *pipelines.TranscribeOptions, k string, v any) *httpError {
	switch k {
	case "language", "task":
		s, ok := v.(string)
		if v == nil {
			return nil
		}
		if !ok || s == "" {
			return errorf(kindInvalid, "`%s` must be a string", k)
		}
		if k == "language" {
			o.Language = s
		} else {
			o.Task = s
		}
	case "max_new_tokens":
		n, ok := v.(pyInt)
		if v == nil {
			return nil
		}
		i, err := strconv.Atoi(string(n))
		if !ok || err != nil || i < 1 {
			return newError(kindInvalid, "`max_new_tokens` must be a positive integer")
		}
		o.MaxNewTokens = i
	default:
		return errorf(kindInvalid, "generate() argument '%s' is not supported by this server", k)
	}
	return nil
}

// appendTranscript writes {"text": …} and, when timestamps were asked, "chunks" with
// [start, end] (null where the model gave none), floats as Python prints them.
func appendTranscript(dst []byte, t pipelines.Transcript) []byte {
	dst = append(dst, `{"text":`...)
	dst = appendJSONString(dst, t.Text)
	if t.Chunks != nil {
		dst = append(dst, `,"chunks":[`...)
		for i, c := range t.Chunks {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"text":`...)
			dst = appendJSONString(dst, c.Text)
			dst = append(dst, `,"timestamp":[`...)
			dst = appendOptFloat(dst, c.Start)
			dst = append(dst, ',')
			dst = appendOptFloat(dst, c.End)
			dst = append(dst, "]}"...)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func appendOptFloat(dst []byte, f *float64) []byte {
	if f == nil {
		return append(dst, "null"...)
	}
	return appendPyFloat(dst, *f, 64)
}
