package cuda

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions("")
	if err != nil || !reflect.DeepEqual(o, DefaultOptions()) {
		t.Fatalf("empty: %+v %v", o, err)
	}
	o, err = ParseOptions(" gpu_mem_limit=4GiB , use_tf32=0,cudnn_conv_algo_search=exhaustive,arena_extend_strategy=kSameAsRequested,enable_cuda_graph=true,do_copy_in_default_stream=off,prefer_nhwc=1")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{GPUMemLimit: 4 << 30, ArenaExtendStrategy: "kSameAsRequested", CudnnConvAlgoSearch: "EXHAUSTIVE",
		UseTF32: false, CopyInDefaultStream: false, CUDAGraph: true, Extra: map[string]string{"prefer_nhwc": "1"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	keys, values := o.KeyValues(2)
	got := map[string]string{}
	for i, k := range keys {
		got[k] = values[i]
	}
	wantKV := map[string]string{"device_id": "2", "gpu_mem_limit": "4294967296", "arena_extend_strategy": "kSameAsRequested",
		"cudnn_conv_algo_search": "EXHAUSTIVE", "use_tf32": "0", "do_copy_in_default_stream": "0", "enable_cuda_graph": "1", "prefer_nhwc": "1"}
	if !reflect.DeepEqual(got, wantKV) {
		t.Errorf("key values %v, want %v", got, wantKV)
	}
	if !sortedStrings(keys) {
		t.Errorf("keys not sorted: %v", keys)
	}
	// Defaults: TF32 on, no memory cap.
	keys, values = DefaultOptions().KeyValues(0)
	def := map[string]string{}
	for i, k := range keys {
		def[k] = values[i]
	}
	if def["use_tf32"] != "1" || def["device_id"] != "0" || def["gpu_mem_limit"] != "" || def["cudnn_conv_algo_search"] != "HEURISTIC" {
		t.Errorf("defaults %v", def)
	}
}

func TestParseOptionsErrors(t *testing.T) {
	for in, want := range map[string]string{
		"use_tf32":                       "want key=value",
		"=1":                             "want key=value",
		"use_tf32=maybe":                 "not a boolean",
		"gpu_mem_limit=lots":             "not a byte count",
		"gpu_mem_limit=-1":               "not a byte count",
		"gpu_mem_limit=99999999999GiB":   "too large",
		"arena_extend_strategy=kDouble":  "not one of",
		"cudnn_conv_algo_search=fastest": "not one of",
		"device_id=1":                    "--device cuda:N",
	} {
		_, err := ParseOptions(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseOptions(%q) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "2KiB": 2048, "3MiB": 3 << 20, "1GB": 1e9, "5 MB": 5e6, "7B": 7} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}
