package models

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// RepoFile is one file of a repo at a commit, as the Hub lists it.
type RepoFile struct {
	Path      string
	Size      int64  // bytes; -1 when the listing did not say
	BlobID    string // git blob sha1
	LFSSHA256 string // set for LFS files: the sha256 that names the blob
	LFSSize   int64
}

// etag is the name of the file's blob in the cache: sha256 for LFS files, else the git sha1.
func (f RepoFile) etag() string {
	if f.LFSSHA256 != "" {
		return f.LFSSHA256
	}
	return f.BlobID
}

// listing maps repo paths to their metadata.
type listing map[string]RepoFile

func (l listing) has(p string) bool { _, ok := l[p]; return ok }

// Infergo fetches only what a task needs: the small metadata files below, then the ONNX
// graph(s) for the task and the external data they reference. Weights in other formats
// (pytorch_model.bin, model.safetensors, tf/flax) and other dtype variants are never fetched.

// metadataFiles are fetched whenever the repo has them (they are small and decide the task,
// tokenizer, pooling and generation settings).
var metadataFiles = []string{
	"config.json", "README.md", "modules.json", "tokenizer.json", "tokenizer_config.json",
	"special_tokens_map.json", "generation_config.json", "preprocessor_config.json",
	"sentence_bert_config.json", "config_sentence_transformers.json",
}

// legacyTokenizerFiles are fetched only when there is no tokenizer.json.
var legacyTokenizerFiles = []string{"vocab.json", "merges.txt", "vocab.txt", "added_tokens.json"}

// stModuleConfig matches sentence-transformers module configs (1_Pooling/config.json, 2_Dense/…).
var stModuleConfig = regexp.MustCompile(`^[0-9]+_[A-Za-z0-9_.-]+/config\.json$`)

// metadataPlan returns the metadata files the listing holds, and the fixed names it lacks
// (recorded as .no_exist markers, as huggingface_hub does after a 404).
func metadataPlan(l listing) (present, absent []string) {
	names := slices.Clone(metadataFiles)
	if !l.has("tokenizer.json") {
		names = append(names, legacyTokenizerFiles...)
	}
	for _, n := range names {
		if l.has(n) {
			present = append(present, n)
		} else {
			absent = append(absent, n)
		}
	}
	if l.has("modules.json") {
		for _, p := range l.sortedPaths() {
			if stModuleConfig.MatchString(p) {
				present = append(present, p)
			}
		}
	}
	return present, absent
}

// Graph roles: the optimum / transformers.js export names without ".onnx" and dtype suffix.
const (
	roleModel    = "model"
	roleEncoder  = "encoder_model"
	roleDecoder  = "decoder_model"
	roleWithPast = "decoder_with_past_model"
	roleMerged   = "decoder_model_merged"
)

// rolesByPrefix is the parse order for graph file names: longer names first, so
// "decoder_model_merged_fp16" is the merged decoder and not "decoder_model" + "_merged_fp16".
var rolesByPrefix = []string{roleWithPast, roleMerged, roleEncoder, roleDecoder, roleModel}

// graphSet is one acceptable combination of graphs: all of need, plus opt where present.
type graphSet struct{ need, opt []string }

var (
	// Seq2seq (Whisper, T5, …): transformers.js loads encoder + merged decoder; optimum loads
	// encoder + decoder (+ decoder with past).
	seq2seqSets = []graphSet{
		{need: []string{roleEncoder, roleMerged}},
		{need: []string{roleEncoder, roleDecoder}, opt: []string{roleWithPast}},
	}
	// Decoder-only (hf-inference-api.md §5.9): model.onnx first, then the merged decoder,
	// then the split decoders; the with-past graph comes along for cached generation.
	decoderSets = []graphSet{
		{need: []string{roleModel}, opt: []string{roleWithPast}},
		{need: []string{roleMerged}},
		{need: []string{roleDecoder}, opt: []string{roleWithPast}},
		{need: []string{roleWithPast}},
	}
	// Encoder-only tasks and CTC speech recognition: one graph.
	encoderSets = []graphSet{{need: []string{roleModel}}, {need: []string{roleEncoder}}}
)

func setsForTask(task string) []graphSet {
	switch task {
	case "text-generation":
		return decoderSets
	case "automatic-speech-recognition", "text2text-generation", "translation", "summarization", "image-to-text":
		return append(slices.Clone(seq2seqSets), graphSet{need: []string{roleModel}})
	case "":
		// Unknown task: let the layout decide.
		out := slices.Clone(seq2seqSets)
		out = append(out, decoderSets...)
		return append(out, graphSet{need: []string{roleEncoder}})
	}
	return encoderSets
}

// graphDirs is where graphs are looked for, in order: transformers.js/onnx-community repos
// keep them under onnx/, optimum exports at the root (as Repo.ONNXFile does locally).
var graphDirs = []string{"onnx", ""}

// dtypeSuffixes maps transformers.js dtype names to file suffixes (utils/dtypes.js).
var dtypeSuffixes = map[string]string{
	"fp32": "", "fp16": "_fp16", "q8": "_quantized", "int8": "_int8", "uint8": "_uint8",
	"q4": "_q4", "q4f16": "_q4f16", "bnb4": "_bnb4",
}

var variantName = regexp.MustCompile(`^_?[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// variantSuffixes returns the file suffixes a variant name may mean, in order: the name
// itself ("quantized" → "_quantized"), then its transformers.js dtype ("q8" → "_quantized").
func variantSuffixes(name string) []string {
	n := strings.TrimPrefix(name, "_")
	out := []string{"_" + n}
	if s, ok := dtypeSuffixes[n]; ok && s != out[0] {
		out = append(out, s)
	}
	return out
}

// isGraphPath reports whether --onnx-file names a file rather than a variant.
func isGraphPath(name string) bool {
	return strings.HasSuffix(name, ".onnx") || strings.Contains(name, "/")
}

// parseGraphName splits "decoder_model_merged_q4.onnx" into role and suffix.
func parseGraphName(base string) (role, suffix string, ok bool) {
	stem, found := strings.CutSuffix(base, ".onnx")
	if !found {
		return "", "", false
	}
	for _, r := range rolesByPrefix {
		if stem == r {
			return r, "", true
		}
		if rest, ok := strings.CutPrefix(stem, r+"_"); ok && rest != "" {
			return r, "_" + rest, true
		}
	}
	return "", "", false
}

func graphPath(dir, role, suffix string) string { return pathJoin(dir, role+suffix+".onnx") }

// pick returns the set's files in dir with suffix, or nil if a needed graph is missing.
func (s graphSet) pick(l listing, dir, suffix string) []string {
	var out []string
	for _, r := range s.need {
		p := graphPath(dir, r, suffix)
		if !l.has(p) {
			return nil
		}
		out = append(out, p)
	}
	for _, r := range s.opt {
		if p := graphPath(dir, r, suffix); l.has(p) {
			out = append(out, p)
		}
	}
	return out
}

// selectGraphs chooses the ONNX graph(s) for a task from a listing. onnxFile is empty (the
// default fp32 export), a variant name ("quantized", "fp16", "q4", …) or a repo path
// ("onnx/decoder_model_merged_q4.onnx"); a path's companions for the task (e.g. the
// encoder of the same dtype) come with it. Graphs come in role order (encoder, decoder,
// decoder with past); for single-graph tasks the one graph is the model.
func selectGraphs(l listing, repoID, task, onnxFile string) ([]string, error) {
	sets := setsForTask(task)
	if onnxFile != "" && isGraphPath(onnxFile) {
		if err := ValidateRepoPath(onnxFile); err != nil {
			return nil, err
		}
		if !l.has(onnxFile) {
			return nil, fmt.Errorf("models: %s has no file %q: %w (available: %s)", repoID, onnxFile, ErrNoONNX, onnxList(l))
		}
		dir, base := path.Split(onnxFile)
		dir = strings.TrimSuffix(dir, "/")
		if role, suffix, ok := parseGraphName(base); ok {
			for _, s := range sets {
				if !slices.Contains(s.need, role) && !slices.Contains(s.opt, role) {
					continue
				}
				if picked := s.pick(l, dir, suffix); slices.Contains(picked, onnxFile) {
					return picked, nil
				}
			}
		}
		return []string{onnxFile}, nil
	}
	suffixes := []string{""}
	if onnxFile != "" {
		if !variantName.MatchString(onnxFile) {
			return nil, fmt.Errorf("models: --onnx-file %q is neither a repo path nor a variant name like quantized, fp16 or q4", onnxFile)
		}
		suffixes = variantSuffixes(onnxFile)
	}
	for _, suffix := range suffixes {
		for _, dir := range graphDirs {
			for _, s := range sets {
				if picked := s.pick(l, dir, suffix); picked != nil {
					return picked, nil
				}
			}
		}
	}
	what := "task " + task
	if task == "" {
		what = "any task"
	}
	if onnxFile != "" {
		what += fmt.Sprintf(" and variant %q", onnxFile)
	}
	if len(onnxPaths(l)) == 0 {
		return nil, fmt.Errorf("models: %s has no ONNX files: %w; Infergo serves ONNX exports (look for an onnx-community, Xenova or optimum export of this model)", repoID, ErrNoONNX)
	}
	return nil, fmt.Errorf("models: %s: %w for %s (available: %s); choose one with --onnx-file", repoID, ErrNoONNX, what, onnxList(l))
}

func onnxPaths(l listing) []string {
	var out []string
	for p := range l {
		if strings.HasSuffix(p, ".onnx") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func onnxList(l listing) string {
	ps := onnxPaths(l)
	if len(ps) == 0 {
		return "none"
	}
	if len(ps) > 20 {
		ps = append(ps[:20], "…")
	}
	return strings.Join(ps, ", ")
}

// externalDataPaths turns a graph's external-data locations into repo paths, refusing any
// that would leave the repo (absolute, "..", backslashes): ONNX Runtime resolves them next to
// the graph, and here they also become cache paths.
func externalDataPaths(graph string, locations []string) ([]string, error) {
	dir := path.Dir(graph)
	var out []string
	for _, loc := range locations {
		clean := strings.TrimPrefix(loc, "./")
		if err := ValidateRepoPath(clean); err != nil {
			return nil, fmt.Errorf("models: %s references external data %q outside its directory", graph, loc)
		}
		if dir != "." {
			clean = dir + "/" + clean
		}
		if err := ValidateRepoPath(clean); err != nil {
			return nil, fmt.Errorf("models: %s references external data %q: %w", graph, loc, err)
		}
		out = append(out, clean)
	}
	return out, nil
}

// guessExternalData lists the files named like a graph's external data (<graph>_data,
// <graph>.data and transformers.js chunks <graph>_data_1, …): the fallback when the graph
// cannot be parsed.
func guessExternalData(l listing, graph string) []string {
	var out []string
	for _, p := range l.sortedPaths() {
		rest, ok := strings.CutPrefix(p, graph)
		if !ok {
			continue
		}
		if rest == "_data" || rest == ".data" || strings.HasPrefix(rest, "_data_") {
			out = append(out, p)
		}
	}
	return out
}
