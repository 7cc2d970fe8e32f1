package cuda

import "testing"

func TestParseDevice(t *testing.T) {
	ok := map[string]Device{
		"":        {Kind: CPU},
		"cpu":     {Kind: CPU},
		" CPU ":   {Kind: CPU},
		"cuda":    {Kind: CUDA},
		"gpu":     {Kind: CUDA},
		"cuda:0":  {Kind: CUDA},
		"cuda:3":  {Kind: CUDA, ID: 3},
		"GPU:1":   {Kind: CUDA, ID: 1},
		"auto":    {Kind: Auto},
		"cuda:12": {Kind: CUDA, ID: 12},
	}
	for in, want := range ok {
		got, err := ParseDevice(in)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"cuda:", "cuda:-1", "cuda:x", "cuda:01", "tpu", "cuda:1:2", "cuda:+1"} {
		if _, err := ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) accepted", bad)
		}
	}
	for _, s := range []string{"cpu", "cuda:0", "cuda:7", "auto"} {
		d, _ := ParseDevice(s)
		if d.String() != s {
			t.Errorf("round trip %q → %q", s, d.String())
		}
	}
}
