module github.com/infergo/infergo

go 1.26.0

require github.com/yalue/onnxruntime_go v1.27.0

require github.com/alecthomas/kong v1.17.0 // indirect
