package runtime

import (
	"fmt"
	"strings"
)

// DType is the element type of a tensor.
type DType uint8

// Element types Infergo moves across the engine boundary.
const (
	Undefined DType = iota
	Float32
	Float16 // IEEE half precision, stored as raw uint16 bits
	Int64
	Int32
	Bool
	Uint8
	Int8
	Float64
)

var dtypeNames = [...]string{"undefined", "float32", "float16", "int64", "int32", "bool", "uint8", "int8", "float64"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Tensor is a dense, row-major host tensor. Data holds exactly Elements() values and is one of
// []float32, []uint16 (float16 bits), []int64, []int32, []bool, []uint8, []int8 or []float64.
// A Tensor does not own anything outside the Go heap, so it needs no release.
type Tensor struct {
	Shape []int64
	Data  any
}

// Element is the set of Go element types a Tensor can hold.
type Element interface {
	float32 | uint16 | int64 | int32 | bool | uint8 | int8 | float64
}

// NewTensor wraps data (not copied) with the given shape. It panics if the sizes disagree,
// because that is always a programming error.
func NewTensor[T Element](shape []int64, data []T) Tensor {
	if n := Elements(shape); int64(len(data)) != n {
		panic(fmt.Sprintf("runtime: tensor of shape %v needs %d elements, got %d", shape, n, len(data)))
	}
	return Tensor{Shape: shape, Data: data}
}

// Zeros returns a zero-filled tensor of the given shape.
func Zeros[T Element](shape ...int64) Tensor {
	return Tensor{Shape: shape, Data: make([]T, Elements(shape))}
}

// Elements returns the number of elements of shape (1 for a scalar shape).
func Elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// DType reports the element type of t.Data.
func (t Tensor) DType() DType {
	switch t.Data.(type) {
	case []float32:
		return Float32
	case []uint16:
		return Float16
	case []int64:
		return Int64
	case []int32:
		return Int32
	case []bool:
		return Bool
	case []uint8:
		return Uint8
	case []int8:
		return Int8
	case []float64:
		return Float64
	}
	return Undefined
}

// Len returns the number of elements in t.
func (t Tensor) Len() int { return int(Elements(t.Shape)) }

// Float32s returns t.Data as []float32, or nil if t holds another type.
func (t Tensor) Float32s() []float32 { v, _ := t.Data.([]float32); return v }

// Int64s returns t.Data as []int64, or nil if t holds another type.
func (t Tensor) Int64s() []int64 { v, _ := t.Data.([]int64); return v }

func (t Tensor) String() string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s[%s]", t.DType(), strings.Join(dims, ","))
}
