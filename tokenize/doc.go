// Package tokenize is a pure-Go implementation of Hugging Face tokenizer.json tokenizers with
// the exact behaviour of the Rust tokenizers library (0.23.x, as used by Python's tokenizers and
// transformers): normalizers with offset alignments, pre-tokenizers, the WordPiece, BPE, Unigram
// and WordLevel models, added tokens, post-processors, truncation, padding and decoders.
//
// Parity is checked against the reference itself (see scripts/tokenizer-goldens): ids, tokens,
// offsets, type ids, masks, word and sequence ids, overflowing windows and decoded text, on the
// shared Python fixtures and on goldens for 35 tokenizer variants; every Unicode code point is
// checked for the character classes and per-character normalizations.
//
// Behaviour worth knowing, all as in Rust unless said otherwise:
//
//   - Offsets are character (code point) offsets into the input, as Python returns them for str
//     input; ByteOffsets are the same spans in bytes, as Rust's byte-offset encode returns them.
//   - SpecialTokensMask is 1 for the tokens a post-processor adds (and padding); an added token
//     typed in the text, special or not, is 0.
//   - With truncation, tokenization stops once max_length tokens exist (0.23's early exit), so
//     overflowing windows only cover the pre-tokens tokenized up to that point; in windows of a
//     pair every token has sequence id 0; a word-level detail of left truncation is that word ids
//     restart from the first kept pre-token.
//   - A stride not smaller than max_length minus the special tokens is an error (Rust's
//     with_truncation); Rust would panic where we return errors, and usize underflows (max_length
//     below the number of special tokens) disable truncation as in Rust.
//   - Encode pads like Rust's encode: to Length with PadFixed, and with PadBatchLongest only up
//     to PadToMultipleOf (a batch of one).
//   - Deviations: Decode returns an error for an unknown id (Rust skips it); a truncated pair
//     producing more than 4096 overflowing window combinations is an error (Rust copies them
//     until memory runs out); BPE dropout is ignored (nil in practice); JSON keys match case
//     insensitively (encoding/json), where serde ignores a miscased key.
//
// Regular expressions (Split, Replace): the GPT-2 and cl100k/Llama-3/Qwen2 patterns have
// hand-written matchers; other patterns run on Go's regexp (or, with look-around, on
// github.com/dlclark/regexp2) with onig's Unicode classes made explicit; scripts in \p{...} use
// Go's Unicode 15 tables.
package tokenize
