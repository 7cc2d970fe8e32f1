package intent_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergo/infergo/pipelines/intent"
	"github.com/infergo/infergo/pipelines/intent/intenttest"
)

func TestEvaluateKFold(t *testing.T) {
	syn := intenttest.SyntheticWorkspace(12, 15, 4, true, 5)
	path := filepath.Join(t.TempDir(), "ws.json.gz")
	if err := os.WriteFile(path, gz(t, syn.JSON), 0o644); err != nil {
		t.Fatal(err)
	}
	emb := &intenttest.HashEmbedder{}
	var folds []int
	r, err := intent.EvaluateFile(context.Background(), emb, path, intent.EvalOptions{Folds: 5, Progress: func(f, n int) { folds = append(folds, f) }})
	if err != nil {
		t.Fatal(err)
	}
	// Test-tagged phrases are left out of cross-validation; every other phrase is scored once.
	if r.Phrases != 12*15 || len(folds) != 5 || r.Folds != 5 {
		t.Errorf("%d phrases scored in %v folds", r.Phrases, folds)
	}
	if emb.Texts.Load() != 12*15 {
		t.Errorf("embedded %d texts, want each phrase once", emb.Texts.Load())
	}
	total := 0
	for i, row := range r.Confusion {
		for _, n := range row {
			total += n
		}
		if r.PerClass[i].Support != 15 {
			t.Errorf("class %d support %d", i, r.PerClass[i].Support)
		}
	}
	if total != r.Phrases {
		t.Errorf("confusion sums to %d", total)
	}
	if r.Accuracy < 0.6 || r.MacroF1 < 0.6 { // chance is 1/12
		t.Errorf("accuracy %.3f, macro-F1 %.3f", r.Accuracy, r.MacroF1)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"5-fold cross-validation", "accuracy", "macro-F1", "precision  recall      f1  support", "group_00/intent_00_"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	pngPath := filepath.Join(t.TempDir(), "confusion.png")
	if err := r.WriteConfusionPNG(pngPath); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 12*10 || b.Dy() < 12*10 {
		t.Errorf("image %v too small for 12 intents", b)
	}

	// Same seed, same report.
	r2, err := intent.EvaluateFile(context.Background(), emb, path, intent.EvalOptions{Folds: 5})
	if err != nil || r2.Accuracy != r.Accuracy {
		t.Errorf("rerun: accuracy %v vs %v (%v)", r2.Accuracy, r.Accuracy, err)
	}
}

func TestEvaluateTestSet(t *testing.T) {
	syn := intenttest.SyntheticWorkspace(6, 12, 5, true, 9)
	ws, _ := intent.ParseWorkspace(syn.JSON)
	r, err := intent.Evaluate(context.Background(), &intenttest.HashEmbedder{}, ws, intent.EvalOptions{TestSet: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Phrases != 6*5 || r.Folds != 0 || !strings.Contains(r.Mode, "test set") {
		t.Errorf("%d phrases, mode %q", r.Phrases, r.Mode)
	}
	ws, _ = intent.ParseWorkspace(intenttest.SpecWorkspace)
	if _, err := intent.Evaluate(context.Background(), &intenttest.HashEmbedder{}, ws, intent.EvalOptions{TestSet: true}); err == nil {
		t.Error("test-set run without Test phrases accepted")
	}
	if _, err := intent.Evaluate(context.Background(), &intenttest.HashEmbedder{}, ws, intent.EvalOptions{Folds: 1}); err == nil {
		t.Error("1 fold accepted")
	}
}

// TestMetrics checks the arithmetic on a confusion matrix worked out by hand.
func TestMetrics(t *testing.T) {
	r := intent.NewReportForTest([]intent.Class{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}}, [][]int{
		{3, 1, 0, 0}, // a: 4 phrases, 3 right
		{0, 2, 2, 0}, // b: 4 phrases, 2 right, 2 taken for c
		{0, 0, 0, 0}, // c: never a label but predicted twice: F1 0, counted in the macro average
		{0, 0, 0, 0}, // d: never a label, never predicted: left out of the macro average
	})
	if r.Accuracy != 5.0/8 {
		t.Errorf("accuracy %v", r.Accuracy)
	}
	pa, ra := 1.0, 0.75
	pb, rb := 2.0/3, 0.5
	fa, fb := 2*pa*ra/(pa+ra), 2*pb*rb/(pb+rb)
	if d := r.MacroF1 - (fa+fb+0)/3; d > 1e-12 || d < -1e-12 {
		t.Errorf("macro-F1 %v, want %v", r.MacroF1, (fa+fb)/3)
	}
	if r.PerClass[1].Predicted != 3 || r.PerClass[2].Predicted != 2 || r.PerClass[2].Support != 0 {
		t.Errorf("per class %+v", r.PerClass)
	}
}
