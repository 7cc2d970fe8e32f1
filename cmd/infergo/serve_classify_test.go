package main

import (
	"math"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
)

// TestServeClassifiers runs `infergo serve` on the token- and text-classification fixtures
// with their tasks inferred from the graphs, and checks the answers against transformers'
// goldens.
func TestServeClassifiers(t *testing.T) {
	var ner struct {
		Texts  []string `json:"texts"`
		Simple [][]struct {
			Group string  `json:"entity_group"`
			Score float64 `json:"score"`
			Word  string  `json:"word"`
			Start int     `json:"start"`
			End   int     `json:"end"`
		} `json:"pipeline_simple"`
	}
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-ner", "golden.json"), &ner)
	p := startServe(t, []string{"TASK="}, "--model", testutil.Fixture("tiny-bert-ner"), "--workers", "2")
	for i, text := range ner.Texts {
		var got []struct {
			Group string  `json:"entity_group"`
			Score float64 `json:"score"`
			Word  string  `json:"word"`
			Start int     `json:"start"`
			End   int     `json:"end"`
		}
		postJSON(t, p.url+"/", map[string]any{"inputs": text}, &got)
		if len(got) != len(ner.Simple[i]) {
			t.Fatalf("%q: %d entities, want %d", text, len(got), len(ner.Simple[i]))
		}
		for k, w := range ner.Simple[i] {
			g := got[k]
			if g.Group != w.Group || g.Word != w.Word || g.Start != w.Start || g.End != w.End || math.Abs(g.Score-w.Score) > 1e-4 {
				t.Errorf("%q[%d]: %+v, want %+v", text, k, g, w)
			}
		}
	}
	p.stop(t)

	var cls struct {
		Texts []string `json:"texts"`
		TopK  [][]struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		} `json:"pipeline_top_k_none"`
	}
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-classifier", "golden.json"), &cls)
	p = startServe(t, []string{"TASK=text-classification"}, "--model", testutil.Fixture("tiny-bert-classifier"))
	for i, text := range cls.Texts {
		var aic [][]struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		}
		postJSON(t, p.url+"/", map[string]any{"inputs": text}, &aic)
		var tei []struct {
			Score float64 `json:"score"`
			Label string  `json:"label"`
		}
		postJSON(t, p.url+"/predict", map[string]any{"inputs": text}, &tei)
		if len(aic) != 1 || len(aic[0]) != len(cls.TopK[i]) || len(tei) != len(cls.TopK[i]) {
			t.Fatalf("%q: aic %v, tei %v", text, aic, tei)
		}
		for k, w := range cls.TopK[i] {
			if aic[0][k].Label != w.Label || tei[k].Label != w.Label ||
				math.Abs(aic[0][k].Score-w.Score) > 1e-4 || math.Abs(tei[k].Score-w.Score) > 1e-4 {
				t.Errorf("%q rank %d: aic %+v, tei %+v, want %+v", text, k, aic[0][k], tei[k], w)
			}
		}
	}
	p.stop(t)
}
