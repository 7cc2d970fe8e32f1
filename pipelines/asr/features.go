package asr

import (
	"encoding/json"
	"fmt"
	"math"

	"gonum.org/v1/gonum/dsp/fourier"
)

// PreprocessorConfig is preprocessor_config.json: WhisperFeatureExtractor or
// Wav2Vec2FeatureExtractor settings.
type PreprocessorConfig struct {
	FeatureExtractorType string  `json:"feature_extractor_type"`
	SamplingRate         int     `json:"sampling_rate"`
	FeatureSize          int     `json:"feature_size"` // mel bins (Whisper), 1 (wav2vec2)
	NFFT                 int     `json:"n_fft"`
	HopLength            int     `json:"hop_length"`
	ChunkLength          int     `json:"chunk_length"` // seconds per Whisper window
	NSamples             int     `json:"n_samples"`
	NbMaxFrames          int     `json:"nb_max_frames"`
	PaddingValue         float64 `json:"padding_value"`
	Dither               float64 `json:"dither"`
	DoNormalize          *bool   `json:"do_normalize"`
	ReturnAttentionMask  bool    `json:"return_attention_mask"`
}

// ParsePreprocessorConfig reads preprocessor_config.json and fills Whisper's defaults.
func ParsePreprocessorConfig(b []byte) (PreprocessorConfig, error) {
	var c PreprocessorConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("asr: preprocessor_config.json: %w", err)
	}
	if c.SamplingRate <= 0 {
		c.SamplingRate = 16000
	}
	if c.FeatureSize <= 0 {
		c.FeatureSize = 80
	}
	if c.NFFT <= 0 {
		c.NFFT = 400
	}
	if c.HopLength <= 0 {
		c.HopLength = 160
	}
	if c.ChunkLength <= 0 {
		c.ChunkLength = 30
	}
	if c.NSamples <= 0 {
		c.NSamples = c.ChunkLength * c.SamplingRate
	}
	if c.NbMaxFrames <= 0 {
		c.NbMaxFrames = c.NSamples / c.HopLength
	}
	return c, nil
}

// LogMel computes WhisperFeatureExtractor's input_features for one window: audio padded with
// zeros (or cut) to n_samples, a centred STFT (reflect padding, periodic Hann window,
// n_fft, hop) whose last frame is dropped, the power spectrum through Slaney-normalised mel
// filters on a Slaney mel scale from 0 Hz to Nyquist, log10(max(·, 1e-10)), clamped to the
// maximum − 8, then (x + 4) / 4. The result is [mels][frames] flattened row-major, the
// layout of input_features without its batch axis. Computed in float64 (transformers uses
// numpy float64 or torch float32; both agree with this to ~1e-6).
type LogMel struct {
	mels, nfft, hop, samples, frames int
	filters                          [][]float64 // mels × (nfft/2+1), sparse in practice
	lo, hi                           []int       // non-zero bin range of each filter
	window                           []float64
}

// NewLogMel prepares the filters and window for c.
func NewLogMel(c PreprocessorConfig) (*LogMel, error) {
	if c.NFFT < 2 || c.HopLength < 1 || c.FeatureSize < 1 || c.NSamples < c.NFFT {
		return nil, fmt.Errorf("asr: log-mel: n_fft %d, hop %d, %d mels, %d samples", c.NFFT, c.HopLength, c.FeatureSize, c.NSamples)
	}
	m := &LogMel{mels: c.FeatureSize, nfft: c.NFFT, hop: c.HopLength, samples: c.NSamples, frames: c.NSamples / c.HopLength}
	m.filters = melFilterBank(c.NFFT/2+1, c.FeatureSize, 0, float64(c.SamplingRate)/2, c.SamplingRate)
	for _, f := range m.filters {
		lo, hi := len(f), 0
		for i, v := range f {
			if v != 0 {
				lo, hi = min(lo, i), i+1
			}
		}
		if lo > hi {
			lo = hi
		}
		m.lo, m.hi = append(m.lo, lo), append(m.hi, hi)
	}
	// Periodic Hann window (torch.hann_window / window_function(periodic=True)).
	m.window = make([]float64, c.NFFT)
	for i := range m.window {
		m.window[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(c.NFFT))
	}
	return m, nil
}

// Mels returns the number of mel bins; Frames the frames per window.
func (m *LogMel) Mels() int   { return m.mels }
func (m *LogMel) Frames() int { return m.frames }

// Samples is the window length in samples (n_samples).
func (m *LogMel) Samples() int { return m.samples }

// Compute returns the features of audio (mono at the model's rate), padded or cut to one
// window. It is safe for concurrent use.
func (m *LogMel) Compute(audio []float32) []float32 {
	n := m.samples
	half := m.nfft / 2
	// The padded signal with the STFT's reflect padding on both sides.
	x := make([]float64, n+2*half)
	for i := 0; i < n && i < len(audio); i++ {
		x[half+i] = float64(audio[i])
	}
	for i := 1; i <= half; i++ {
		x[half-i] = x[half+i]
		x[half+n-1+i] = x[half+n-1-i]
	}
	audioEnd := half + min(len(audio), n) // x is zero from here up to the right reflection

	fft := fourier.NewFFT(m.nfft)
	bins := m.nfft/2 + 1
	frame := make([]float64, m.nfft)
	coeff := make([]complex128, bins)
	power := make([]float64, bins)
	out := make([]float64, m.mels*m.frames)
	maxLog := math.Inf(-1)
	var zeroLog []float64 // log10 mel of a silent frame, computed once
	for t := 0; t < m.frames; t++ {
		start := t * m.hop
		// A frame past the audio sees only zeros (the right reflection too, unless the audio
		// reaches the window's end): its spectrum is the same every time.
		silent := start >= audioEnd && (start+m.nfft <= half+n || audioEnd <= n-1)
		if silent && zeroLog != nil {
			for k := 0; k < m.mels; k++ {
				out[k*m.frames+t] = zeroLog[k]
			}
			continue
		}
		for i := range frame {
			frame[i] = x[start+i] * m.window[i]
		}
		fft.Coefficients(coeff, frame)
		for i, c := range coeff {
			power[i] = real(c)*real(c) + imag(c)*imag(c)
		}
		var logs []float64
		if silent {
			logs = make([]float64, m.mels)
		}
		for k, f := range m.filters {
			var s float64
			for i := m.lo[k]; i < m.hi[k]; i++ {
				s += f[i] * power[i]
			}
			v := math.Log10(max(s, 1e-10))
			out[k*m.frames+t] = v
			maxLog = max(maxLog, v)
			if logs != nil {
				logs[k] = v
			}
		}
		if silent {
			zeroLog = logs
		}
	}
	res := make([]float32, len(out))
	floor := maxLog - 8
	for i, v := range out {
		res[i] = float32((max(v, floor) + 4) / 4)
	}
	return res
}

// melFilterBank is transformers' mel_filter_bank(norm="slaney", mel_scale="slaney"): [mels]
// triangular filters over bins equally spaced from 0 to rate/2, centred on mel-spaced
// frequencies between fmin and fmax, each scaled to unit area (2 / bandwidth).
func melFilterBank(bins, mels int, fmin, fmax float64, rate int) [][]float64 {
	mmin, mmax := hzToMel(fmin), hzToMel(fmax)
	edges := make([]float64, mels+2)
	for i := range edges {
		edges[i] = melToHz(mmin + (mmax-mmin)*float64(i)/float64(mels+1))
	}
	fftFreqs := make([]float64, bins)
	for i := range fftFreqs {
		fftFreqs[i] = float64(rate/2) * float64(i) / float64(bins-1)
	}
	out := make([][]float64, mels)
	for k := range out {
		f := make([]float64, bins)
		enorm := 2 / (edges[k+2] - edges[k])
		for i, freq := range fftFreqs {
			down := (freq - edges[k]) / (edges[k+1] - edges[k])
			up := (edges[k+2] - freq) / (edges[k+2] - edges[k+1])
			f[i] = max(0, min(down, up)) * enorm
		}
		out[k] = f
	}
	return out
}

// The Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
const (
	melMinLogHz  = 1000.0
	melMinLogMel = 15.0
)

var melLogStep = 27 / math.Log(6.4)

func hzToMel(f float64) float64 {
	if f >= melMinLogHz {
		return melMinLogMel + math.Log(f/melMinLogHz)*melLogStep
	}
	return 3 * f / 200
}

func melToHz(m float64) float64 {
	if m >= melMinLogMel {
		return melMinLogHz * math.Exp((m-melMinLogMel)/melLogStep)
	}
	return 200 * m / 3
}

// NormalizeZeroMeanUnitVar is Wav2Vec2FeatureExtractor's do_normalize: (x − mean) /
// sqrt(var + 1e-7) over the whole clip.
func NormalizeZeroMeanUnitVar(x []float32) []float32 {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	std := math.Sqrt(ss/float64(len(x)) + 1e-7)
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32((float64(v) - mean) / std)
	}
	return out
}
