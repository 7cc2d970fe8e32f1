package intent

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Report is the outcome of Evaluate.
type Report struct {
	Mode    string // "5-fold cross-validation" or "test set (…)"
	Folds   int    // 0 for a test-set run
	Seed    uint64
	Classes []Class
	Phrases int // phrases scored
	// Accuracy is the share of phrases whose top intent is their label.
	Accuracy float64
	// Macro averages are unweighted means over the intents that occur as labels or
	// predictions (scikit-learn's convention); WeightedF1 weights by support.
	MacroPrecision, MacroRecall, MacroF1, WeightedF1 float64
	PerClass                                         []ClassMetrics
	// Confusion[t][p] counts phrases of intent t predicted as intent p.
	Confusion            [][]int
	EmbedTime, TrainTime time.Duration
}

// ClassMetrics are one intent's scores.
type ClassMetrics struct {
	Class
	Precision, Recall, F1 float64
	Support               int // phrases labelled with the intent
	Predicted             int // phrases predicted as the intent
}

func newReport(classes []Class) *Report {
	r := &Report{Classes: classes, Confusion: make([][]int, len(classes))}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, len(classes))
	}
	return r
}

func (r *Report) add(truth, pred int) {
	r.Confusion[truth][pred]++
	r.Phrases++
}

func (r *Report) finish() {
	var correct int
	var macroN int
	r.PerClass = make([]ClassMetrics, len(r.Classes))
	for i, c := range r.Classes {
		m := ClassMetrics{Class: c}
		for j := range r.Classes {
			m.Support += r.Confusion[i][j]
			m.Predicted += r.Confusion[j][i]
		}
		tp := r.Confusion[i][i]
		correct += tp
		if m.Predicted > 0 {
			m.Precision = float64(tp) / float64(m.Predicted)
		}
		if m.Support > 0 {
			m.Recall = float64(tp) / float64(m.Support)
		}
		if m.Precision+m.Recall > 0 {
			m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
		}
		if m.Support > 0 || m.Predicted > 0 {
			macroN++
			r.MacroPrecision += m.Precision
			r.MacroRecall += m.Recall
			r.MacroF1 += m.F1
		}
		r.WeightedF1 += m.F1 * float64(m.Support)
		r.PerClass[i] = m
	}
	if macroN > 0 {
		r.MacroPrecision /= float64(macroN)
		r.MacroRecall /= float64(macroN)
		r.MacroF1 /= float64(macroN)
	}
	if r.Phrases > 0 {
		r.Accuracy = float64(correct) / float64(r.Phrases)
		r.WeightedF1 /= float64(r.Phrases)
	}
}

// WriteText prints the summary (accuracy, macro-F1) and the per-intent table.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "HumanFirst evaluation: %s, %d phrases, %d intents, seed %d\n", r.Mode, r.Phrases, len(r.Classes), r.Seed)
	fmt.Fprintf(bw, "accuracy     %.4f\n", r.Accuracy)
	fmt.Fprintf(bw, "macro-F1     %.4f   (macro precision %.4f, macro recall %.4f)\n", r.MacroF1, r.MacroPrecision, r.MacroRecall)
	fmt.Fprintf(bw, "weighted-F1  %.4f\n", r.WeightedF1)
	fmt.Fprintf(bw, "time         embedding %v, training and scoring %v\n\n", r.EmbedTime.Round(time.Millisecond), r.TrainTime.Round(time.Millisecond))
	nameW := len("intent")
	for _, m := range r.PerClass {
		nameW = max(nameW, len([]rune(truncate(m.FullName, 60))))
	}
	numW := len(strconv.Itoa(len(r.PerClass)))
	fmt.Fprintf(bw, "%*s  %-*s  %9s  %6s  %6s  %7s  %9s\n", numW, "#", nameW, "intent", "precision", "recall", "f1", "support", "predicted")
	for i, m := range r.PerClass {
		name := truncate(m.FullName, 60)
		pad := nameW - len([]rune(name)) // %-*s pads by bytes, names may not be ASCII
		fmt.Fprintf(bw, "%*d  %s%*s  %9.3f  %6.3f  %6.3f  %7d  %9d\n", numW, i+1, name, pad, "", m.Precision, m.Recall, m.F1, m.Support, m.Predicted)
	}
	return bw.Flush()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// WriteConfusionPNG draws the confusion matrix as a PNG: rows are true intents, columns
// predictions, each cell shaded by its share of the row (green on the diagonal, red off it),
// with counts printed when the cells are large enough. Intents are numbered as in WriteText.
func (r *Report) WriteConfusionPNG(path string) error {
	img := r.confusionImage()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".confusion-*.png")
	if err != nil {
		return fmt.Errorf("intent: confusion png: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("intent: confusion png: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("intent: confusion png: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("intent: confusion png: %w", err)
	}
	return nil
}

const (
	glyphW, glyphH = 7, 13 // basicfont.Face7x13
	labelRunes     = 32
)

func (r *Report) confusionImage() *image.RGBA {
	k := len(r.Classes)
	cell := min(28, max(10, 700/max(k, 1)))
	digits := len(strconv.Itoa(k))
	labelW := (digits+1+labelRunes)*glyphW + 8
	top := 2*glyphH + 8 + digits*glyphH + 4
	title := fmt.Sprintf("Confusion matrix: %s, accuracy %.3f, macro-F1 %.3f", r.Mode, r.Accuracy, r.MacroF1)
	w := max(labelW+k*cell+12, len(title)*glyphW+8)
	h := top + k*cell + 12
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.Black, Face: basicfont.Face7x13}
	text := func(x, y int, s string) { // y is the top of the glyph box
		d.Dot = fixed.P(x, y+glyphH-2)
		d.DrawString(s)
	}
	text(4, 2, title)
	text(4, 2+glyphH, "rows: true intent, columns: predicted intent")
	for j := range k {
		// Column numbers are written top to bottom, one digit per line.
		s := strconv.Itoa(j + 1)
		for di, ch := range s {
			text(labelW+j*cell+(cell-glyphW)/2, 2*glyphH+8+(digits-len(s)+di)*glyphH, string(ch))
		}
	}
	for i, c := range r.Classes {
		label := fmt.Sprintf("%*d %s", digits, i+1, truncate(c.FullName, labelRunes))
		text(4, top+i*cell+(cell-glyphH)/2, label)
		support := r.PerClass[i].Support
		for j := range k {
			n := r.Confusion[i][j]
			x0, y0 := labelW+j*cell, top+i*cell
			rect := image.Rect(x0, y0, x0+cell-1, y0+cell-1)
			frac := 0.0
			if support > 0 {
				frac = float64(n) / float64(support)
			}
			draw.Draw(img, rect, &image.Uniform{shade(frac, i == j)}, image.Point{}, draw.Src)
			if n > 0 && cell >= 3*glyphW+2 && len(strconv.Itoa(n)) <= 3 {
				s := strconv.Itoa(n)
				d.Src = image.Black
				if frac > 0.6 {
					d.Src = image.White
				}
				text(x0+(cell-len(s)*glyphW)/2, y0+(cell-glyphH)/2, s)
				d.Src = image.Black
			}
		}
	}
	return img
}

// shade maps a row share in [0, 1] to white→green (diagonal) or white→red (errors).
func shade(frac float64, diagonal bool) color.RGBA {
	if frac <= 0 {
		return color.RGBA{245, 245, 245, 255}
	}
	lerp := func(a, b uint8) uint8 { return uint8(float64(a) + (float64(b)-float64(a))*frac) }
	if diagonal {
		return color.RGBA{lerp(235, 0), lerp(250, 110), lerp(235, 40), 255}
	}
	return color.RGBA{lerp(255, 190), lerp(225, 20), lerp(225, 20), 255}
}
