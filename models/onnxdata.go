package models

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// An ONNX graph over 2 GB keeps its weights in external files named by the tensors
// themselves (TensorProto.external_data "location", relative to the graph's directory).
// Reading those names from the graph is the only exact way to know which files of a repo
// the graph needs, so this file walks just enough of the protobuf wire format to find them,
// seeking over tensor payloads instead of reading them: a 2 GB graph costs a few reads.

// protobuf field numbers (onnx/onnx.proto).
const (
	pbModelGraph          = 7  // ModelProto.graph
	pbGraphNode           = 1  // GraphProto.node
	pbGraphInitializer    = 5  // GraphProto.initializer
	pbGraphSparseInit     = 15 // GraphProto.sparse_initializer
	pbNodeAttribute       = 5  // NodeProto.attribute
	pbAttrT               = 5  // AttributeProto.t
	pbAttrG               = 6  // AttributeProto.g
	pbAttrTensors         = 10 // AttributeProto.tensors
	pbAttrGraphs          = 11 // AttributeProto.graphs
	pbAttrSparseTensor    = 22 // AttributeProto.sparse_tensor
	pbAttrSparseTensors   = 23 // AttributeProto.sparse_tensors
	pbSparseValues        = 1  // SparseTensorProto.values
	pbSparseIndices       = 2  // SparseTensorProto.indices
	pbTensorExternalData  = 13 // TensorProto.external_data
	pbTensorDataLocation  = 14 // TensorProto.data_location
	pbEntryKey            = 1  // StringStringEntryProto.key
	pbEntryValue          = 2  // StringStringEntryProto.value
	pbDataLocationExtern  = 1  // TensorProto.EXTERNAL
	maxGraphNesting       = 64
	maxExternalDataString = 4096
)

var errPBMalformed = errors.New("malformed ONNX protobuf")

// onnxExternalLocations returns the sorted, distinct external-data locations referenced by
// the ONNX model at path.
func onnxExternalLocations(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	locs, err := externalLocations(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("models: %s: %w", path, err)
	}
	return locs, nil
}

// externalLocations walks a serialized ModelProto of the given size.
func externalLocations(r io.ReaderAt, size int64) ([]string, error) {
	w := &pbWalker{r: &windowReader{r: r, size: size}, set: map[string]bool{}}
	err := w.message(0, size, func(field int, wire int, off, n int64) error {
		if field == pbModelGraph && wire == 2 {
			return w.graph(off, off+n, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(w.set))
	for l := range w.set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

type pbWalker struct {
	r   *windowReader
	set map[string]bool
}

func (w *pbWalker) graph(start, end int64, depth int) error {
	if depth > maxGraphNesting {
		return fmt.Errorf("%w: subgraphs nested deeper than %d", errPBMalformed, maxGraphNesting)
	}
	return w.message(start, end, func(field, wire int, off, n int64) error {
		if wire != 2 {
			return nil
		}
		switch field {
		case pbGraphInitializer:
			return w.tensor(off, off+n)
		case pbGraphSparseInit:
			return w.sparse(off, off+n)
		case pbGraphNode:
			return w.message(off, off+n, func(field, wire int, off, n int64) error {
				if field == pbNodeAttribute && wire == 2 {
					return w.attribute(off, off+n, depth)
				}
				return nil
			})
		}
		return nil
	})
}

func (w *pbWalker) attribute(start, end int64, depth int) error {
	return w.message(start, end, func(field, wire int, off, n int64) error {
		if wire != 2 {
			return nil
		}
		switch field {
		case pbAttrT, pbAttrTensors:
			return w.tensor(off, off+n)
		case pbAttrG, pbAttrGraphs:
			return w.graph(off, off+n, depth+1)
		case pbAttrSparseTensor, pbAttrSparseTensors:
			return w.sparse(off, off+n)
		}
		return nil
	})
}

func (w *pbWalker) sparse(start, end int64) error {
	return w.message(start, end, func(field, wire int, off, n int64) error {
		if wire == 2 && (field == pbSparseValues || field == pbSparseIndices) {
			return w.tensor(off, off+n)
		}
		return nil
	})
}

// tensor records the location of a tensor whose data_location is EXTERNAL, as ONNX
// Runtime only reads external_data then.
func (w *pbWalker) tensor(start, end int64) error {
	var location string
	external := false
	err := w.message(start, end, func(field, wire int, off, n int64) error {
		switch {
		case field == pbTensorDataLocation && wire == 0:
			v, _, err := w.r.varint(off, end)
			if err != nil {
				return err
			}
			external = v == pbDataLocationExtern
		case field == pbTensorExternalData && wire == 2:
			var key, value string
			err := w.message(off, off+n, func(field, wire int, off, n int64) error {
				if wire != 2 || (field != pbEntryKey && field != pbEntryValue) {
					return nil
				}
				if n > maxExternalDataString {
					return fmt.Errorf("%w: external_data string of %d bytes", errPBMalformed, n)
				}
				b, err := w.r.bytes(off, n)
				if err != nil {
					return err
				}
				if field == pbEntryKey {
					key = string(b)
				} else {
					value = string(b)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if key == "location" {
				location = value
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if external && location != "" {
		w.set[location] = true
	}
	return nil
}

// message iterates the fields of the message in [start, end). For a varint field off is
// where the value starts; for a length-delimited one off/n frame the payload. Groups
// (wire types 3/4, unused by ONNX) are malformed here.
func (w *pbWalker) message(start, end int64, fn func(field, wire int, off, n int64) error) error {
	for pos := start; pos < end; {
		tag, k, err := w.r.varint(pos, end)
		if err != nil {
			return err
		}
		pos += int64(k)
		field, wire := int(tag>>3), int(tag&7)
		if field == 0 || tag>>3 > 1<<29 {
			return fmt.Errorf("%w: field number %d at offset %d", errPBMalformed, tag>>3, pos)
		}
		switch wire {
		case 0:
			_, k, err := w.r.varint(pos, end)
			if err != nil {
				return err
			}
			if err := fn(field, wire, pos, int64(k)); err != nil {
				return err
			}
			pos += int64(k)
		case 1:
			pos += 8
		case 5:
			pos += 4
		case 2:
			n, k, err := w.r.varint(pos, end)
			if err != nil {
				return err
			}
			pos += int64(k)
			if n > uint64(end-pos) {
				return fmt.Errorf("%w: field %d of %d bytes overruns its message at offset %d", errPBMalformed, field, n, pos)
			}
			if err := fn(field, wire, pos, int64(n)); err != nil {
				return err
			}
			pos += int64(n)
		default:
			return fmt.Errorf("%w: wire type %d at offset %d", errPBMalformed, wire, pos)
		}
		if pos > end {
			return fmt.Errorf("%w: field %d overruns its message", errPBMalformed, field)
		}
	}
	return nil
}

// windowReader gives cheap byte access to an io.ReaderAt through one 64 KiB window, so
// walking message headers does not cost a syscall per byte and skipped payloads are never
// read.
type windowReader struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // file offset of buf[0]
}

const windowSize = 64 << 10

func (w *windowReader) byteAt(pos int64) (byte, error) {
	if pos < 0 || pos >= w.size {
		return 0, fmt.Errorf("%w: unexpected end at offset %d", errPBMalformed, pos)
	}
	if pos < w.off || pos >= w.off+int64(len(w.buf)) {
		if w.buf == nil {
			w.buf = make([]byte, windowSize)
		}
		n := min(int64(windowSize), w.size-pos)
		w.buf = w.buf[:cap(w.buf)][:n]
		if _, err := w.r.ReadAt(w.buf, pos); err != nil && !(errors.Is(err, io.EOF) && len(w.buf) > 0) {
			w.buf = w.buf[:0]
			return 0, err
		}
		w.off = pos
	}
	return w.buf[pos-w.off], nil
}

// varint decodes a base-128 varint at pos that must end before end.
func (w *windowReader) varint(pos, end int64) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if pos+int64(i) >= end {
			return 0, 0, fmt.Errorf("%w: truncated varint at offset %d", errPBMalformed, pos)
		}
		b, err := w.byteAt(pos + int64(i))
		if err != nil {
			return 0, 0, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: varint longer than 10 bytes at offset %d", errPBMalformed, pos)
}

func (w *windowReader) bytes(pos, n int64) ([]byte, error) {
	if pos < 0 || n < 0 || pos+n > w.size {
		return nil, fmt.Errorf("%w: string overruns the file", errPBMalformed)
	}
	b := make([]byte, n)
	if _, err := w.r.ReadAt(b, pos); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, err
	}
	return b, nil
}
