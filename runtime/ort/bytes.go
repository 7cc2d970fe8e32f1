package ort

import "unsafe"

// u16Bytes views float16 bits as bytes without copying (little-endian host).
func u16Bytes(d []uint16) []byte {
	if len(d) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 2*len(d))
}

// bytesU16 copies bytes into float16 bits.
func bytesU16(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return out
}
