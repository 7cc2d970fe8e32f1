module github.com/infergo/infergo

go 1.26.0

require (
	github.com/dlclark/regexp2 v1.12.0
	github.com/rivo/uniseg v0.4.7
	github.com/yalue/onnxruntime_go v1.27.0
	golang.org/x/text v0.43.0
)
