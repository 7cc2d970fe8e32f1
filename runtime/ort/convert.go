package ort

import (
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/infergo/infergo/runtime"
)

func valueInfo(v ortgo.InputOutputInfo) (runtime.ValueInfo, error) {
	if v.OrtValueType != ortgo.ONNXTypeTensor {
		return runtime.ValueInfo{}, fmt.Errorf("%q: %s values are not supported", v.Name, v.OrtValueType)
	}
	dt, ok := fromElementType(v.DataType)
	if !ok {
		return runtime.ValueInfo{}, fmt.Errorf("%q: %w %s", v.Name, errUnsupportedDType, v.DataType)
	}
	return runtime.ValueInfo{Name: v.Name, DType: dt, Shape: append([]int64(nil), v.Dimensions...)}, nil
}

func fromElementType(t ortgo.TensorElementDataType) (runtime.DType, bool) {
	switch t {
	case ortgo.TensorElementDataTypeFloat:
		return runtime.Float32, true
	case ortgo.TensorElementDataTypeFloat16:
		return runtime.Float16, true
	case ortgo.TensorElementDataTypeInt64:
		return runtime.Int64, true
	case ortgo.TensorElementDataTypeInt32:
		return runtime.Int32, true
	case ortgo.TensorElementDataTypeBool:
		return runtime.Bool, true
	case ortgo.TensorElementDataTypeUint8:
		return runtime.Uint8, true
	case ortgo.TensorElementDataTypeInt8:
		return runtime.Int8, true
	case ortgo.TensorElementDataTypeDouble:
		return runtime.Float64, true
	}
	return runtime.Undefined, false
}

// toValue wraps t's Go memory (no copy) in an ONNX Runtime value. The caller destroys it
// after the run that uses it has returned.
func toValue(t runtime.Tensor) (ortgo.Value, error) {
	shape := ortgo.NewShape(t.Shape...)
	switch d := t.Data.(type) {
	case []float32:
		return ortgo.NewTensor(shape, d)
	case []int64:
		return ortgo.NewTensor(shape, d)
	case []int32:
		return ortgo.NewTensor(shape, d)
	case []bool:
		return ortgo.NewTensor(shape, d)
	case []uint8:
		return ortgo.NewTensor(shape, d)
	case []int8:
		return ortgo.NewTensor(shape, d)
	case []float64:
		return ortgo.NewTensor(shape, d)
	case []uint16:
		// float16 bits: hand ONNX Runtime the bytes with the float16 element type.
		if int64(len(d)) < runtime.Elements(t.Shape) {
			return nil, fmt.Errorf("float16 tensor %v has %d elements", t.Shape, len(d))
		}
		return ortgo.NewCustomDataTensor(shape, u16Bytes(d), ortgo.TensorElementDataTypeFloat16)
	}
	return nil, fmt.Errorf("%w %T", errUnsupportedDType, t.Data)
}

// fromValue copies an output value onnxruntime_go allocated into a runtime.Tensor.
// onnxruntime_go already copied the data into Go memory, so the slice is kept as is.
func fromValue(v ortgo.Value) (runtime.Tensor, error) {
	shape := []int64(v.GetShape().Clone())
	switch t := v.(type) {
	case *ortgo.Tensor[float32]:
		return runtime.Tensor{Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[int64]:
		return runtime.Tensor{Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[int32]:
		return runtime.Tensor{Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[bool]:
		return runtime.Tensor{Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[uint8]:
		return runtime.Tensor{Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[int8]:
		return runtime.Tensor{Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[float64]:
		return runtime.Tensor{Shape: shape, Data: t.GetData()}, nil
	case *ortgo.CustomDataTensor:
		if t.DataType() == ortgo.TensorElementDataTypeFloat16 {
			return runtime.Tensor{Shape: shape, Data: bytesU16(t.GetData())}, nil
		}
	}
	return runtime.Tensor{}, fmt.Errorf("%w %T", errUnsupportedDType, v)
}
