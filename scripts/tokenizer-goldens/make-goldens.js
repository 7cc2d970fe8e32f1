#!/usr/bin/env node
// make-goldens.js OUT.json.gz
//
// Encodes the corpus of corpus.js plus real prose (bench/testdata, the shared fixture texts)
// with the reference Rust tokenizers (npm tokenizers, whose encode returns character offsets like
// Python's) through every tokenizer of SPECS, and writes what it returns:
//   single    tricky strings, add_special_tokens true and false: every field, decode both ways
//   pairs     pairs: every field
//   trunc     truncation options (max_length, stride, strategy, direction) on texts and pairs,
//             overflowing windows included
//   pad       padding options on single encodes
//   batch     encode_batch with truncation and padding
//   prose     real prose lines: hashes of the ids and of all fields (see digest)
//   decode    random id sequences decoded with and without special tokens
//   vocab     vocabulary sizes
// A case the reference rejects is recorded as {"error": message}.
// Tokenizers are a base file (relative to the repository root) plus top-level and model patches.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');
const { Tokenizer } = require('tokenizers');
const { tricky, pairs, truncTexts, truncPairs } = require('./corpus');

const root = path.resolve(__dirname, '../..');
const BERT = 'testdata/fixtures/real-tokenizers/bert-base-uncased/tokenizer.json';
const GPT2 = 'testdata/fixtures/real-tokenizers/gpt2/tokenizer.json';
const FIX = (n) => `testdata/fixtures/tokenizers/${n}.json`;
const BUILT = (n) => `tokenize/testdata/tokenizers/${n}.json.gz`;

const added = (id, content, o = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...o });
const tpl = (id, type_id) => ({ SpecialToken: { id, type_id } });
const seq = (id, type_id) => ({ Sequence: { id, type_id } });
const split = (pattern, behavior = 'Isolated', invert = false) => ({ type: 'Split', pattern, behavior, invert });
const byteLevel = (o = {}) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true, ...o });
const CL100K = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const O200K = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const bertAdded = [added(0, '[PAD]'), added(100, '[UNK]'), added(101, '[CLS]'), added(102, '[SEP]'), added(103, '[MASK]')];
const gpt2Added = [added(50256, '<|endoftext|>')];

// Normalizer-only tokenizers: every normalized character becomes one [UNK] token, so the offsets
// expose the alignment of each normalized character to the original.
const normOnly = (normalizer) => ({ patch: {
  version: '1.0', truncation: null, padding: null, added_tokens: [],
  normalizer, pre_tokenizer: split({ Regex: '(?m).' }), post_processor: null, decoder: null,
  model: { type: 'WordLevel', vocab: { '[UNK]': 0 }, unk_token: '[UNK]' },
}, extra: 'marks' });
const t5Charsmap = () => loadBase(BUILT('t5_unigram')).normalizer.normalizers[0];

const SPECS = {
  bert: { base: BERT },
  gpt2: { base: GPT2 },
  fixture_wordpiece: { base: FIX('wordpiece') },
  fixture_bytelevel: { base: FIX('bytelevel_bpe') },
  fixture_unigram: { base: FIX('unigram') },
  t5_unigram: { base: BUILT('t5_unigram') },
  xlmr_unigram: { base: BUILT('t5_unigram'), patch: {
    added_tokens: [added(0, '<pad>'), added(1, '</s>'), added(2, '<unk>'), added(1200, '<s>'), added(1201, '<mask>', { lstrip: true })],
    normalizer: { type: 'Sequence', normalizers: [null, { type: 'Strip', strip_left: false, strip_right: true }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: '▁' }] },
    post_processor: { type: 'TemplateProcessing',
      single: [tpl('<s>', 0), seq('A', 0), tpl('</s>', 0)],
      pair: [tpl('<s>', 0), seq('A', 0), tpl('</s>', 0), tpl('</s>', 0), seq('B', 0), tpl('</s>', 0)],
      special_tokens: { '<s>': { id: '<s>', ids: [1200], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } } },
  } },
  llama_bpe: { base: BUILT('llama_bpe') },
  llama_bpe_metaspace: { base: BUILT('llama_bpe'), patch: {
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
  } },
  llama3_style: { base: GPT2, patch: {
    added_tokens: [...gpt2Added, added(50257, '<|begin_of_text|>')],
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split({ Regex: CL100K }), byteLevel({ use_regex: false })] },
    post_processor: { type: 'Sequence', processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      { type: 'TemplateProcessing',
        single: [tpl('<|begin_of_text|>', 0), seq('A', 0)],
        pair: [tpl('<|begin_of_text|>', 0), seq('A', 0), tpl('<|begin_of_text|>', 1), seq('B', 1)],
        special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [50257], tokens: ['<|begin_of_text|>'] } } }] },
  } },
  qwen2_style: { base: GPT2, patch: {
    added_tokens: [...gpt2Added, added(50257, '<|im_start|>'), added(50258, '<|im_end|>')],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split({ Regex: QWEN2 }), byteLevel({ use_regex: false })] },
  } },
  o200k_style: { base: GPT2, patch: {
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split({ Regex: O200K }), byteLevel({ use_regex: false })] },
  } },
  camel_regexp2: { base: GPT2, patch: {
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split({ Regex: '(?<=\\p{Ll})(?=\\p{Lu})' }), split({ Regex: '\\b' }), byteLevel()] },
  } },
  roberta_style: { base: GPT2, patch: {
    added_tokens: [added(50257, '<s>'), added(50258, '<pad>'), added(50259, '</s>'), added(50260, '<unk>'), ...gpt2Added, added(50261, '<mask>', { lstrip: true })],
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 50259], cls: ['<s>', 50257], trim_offsets: true, add_prefix_space: false },
  } },
  roberta_prefix: { base: GPT2, patch: {
    added_tokens: [added(50257, '<s>'), added(50258, '<pad>'), added(50259, '</s>'), ...gpt2Added, added(50260, '<mask>', { lstrip: true, rstrip: true })],
    pre_tokenizer: byteLevel({ add_prefix_space: true }),
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 50259], cls: ['<s>', 50257], trim_offsets: true, add_prefix_space: true },
  } },
  gpt2_bytelevel_post: { base: GPT2, patch: {
    pre_tokenizer: byteLevel({ add_prefix_space: true }),
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  } },
  bert_cased: { base: BERT, patch: {
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: false },
  } },
  bert_misc: { base: BERT, patch: {
    added_tokens: [...bertAdded, added(30522, 'hello world', { normalized: true, special: false }),
      added(30523, '<sw>', { single_word: true }), added(30524, '[R]', { rstrip: true, special: false }),
      added(30525, '[L]', { lstrip: true }), added(30526, 'ÉTÉ', { normalized: true, special: false })],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKD' }, { type: 'StripAccents' }, { type: 'Lowercase' },
      { type: 'Replace', pattern: { String: '``' }, content: '"' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
      { type: 'Strip', strip_left: true, strip_right: true }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }, { type: 'Punctuation', behavior: 'Contiguous' }] },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] },
  } },
  bert_split: { base: BERT, patch: {
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'CharDelimiterSplit', delimiter: '-' },
      split({ String: "'" }, 'MergedWithPrevious'), split({ Regex: '\\d+' }, 'MergedWithNext'),
      split({ Regex: '[aeiou]' }, 'Contiguous', true), split({ String: 'xyz' }, 'Removed')] },
  } },
  bert_scripts: { base: BERT, patch: {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Nmt' }, { type: 'NFKC' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'UnicodeScripts' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true }] },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true },
  } },
  bert_fixed: { base: BERT, patch: {
    normalizer: { type: 'BertNormalizer', clean_text: false, handle_chinese_chars: false, strip_accents: false, lowercase: true },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'BertPreTokenizer' }, { type: 'FixedLength', length: 4 }] },
  } },
  bert_nfd: { base: BERT, patch: {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'Prepend', prepend: '##' }] },
    pre_tokenizer: { type: 'BertPreTokenizer' },
  } },
  wordlevel: { base: BUILT('wordlevel') },
  bpe_suffix: { base: BUILT('bpe_suffix') },
  bpe_suffix_nofuse: { base: BUILT('bpe_suffix'), model: { fuse_unk: false } },
  bpe_suffix_ignore: { base: BUILT('bpe_suffix'), model: { ignore_merges: true } },
  ctc_chars: { base: BUILT('ctc_chars') },
  norm_nfd: normOnly({ type: 'NFD' }),
  norm_nfkd: normOnly({ type: 'NFKD' }),
  norm_nfc: normOnly({ type: 'NFC' }),
  norm_nfkc: normOnly({ type: 'NFKC' }),
  norm_bert: normOnly({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: true }),
  norm_lower_strip: normOnly({ type: 'Sequence', normalizers: [{ type: 'Lowercase' }, { type: 'Strip', strip_left: true, strip_right: true }, { type: 'StripAccents' }, { type: 'Nmt' }] }),
  norm_precompiled: normOnly('PRECOMPILED'),
  norm_bytelevel: normOnly({ type: 'ByteLevel' }),
};

function loadBase(rel) {
  const buf = fs.readFileSync(path.join(root, rel));
  return JSON.parse(rel.endsWith('.gz') ? zlib.gunzipSync(buf).toString('utf8') : buf.toString('utf8'));
}

// materialize applies a spec's patches; the Go test does the same. A null inside a patched
// normalizer Sequence keeps the base normalizer at that position.
function materialize(spec) {
  if (!spec.base) {
    const doc = JSON.parse(JSON.stringify(spec.patch));
    if (doc.normalizer === 'PRECOMPILED') doc.normalizer = t5Charsmap();
    return doc;
  }
  const base = loadBase(spec.base);
  const out = { ...base };
  for (const [k, v] of Object.entries(spec.patch || {})) out[k] = v;
  if (spec.patch && spec.patch.normalizer && spec.patch.normalizer.normalizers) {
    const baseNorms = base.normalizer && base.normalizer.normalizers ? base.normalizer.normalizers : [base.normalizer];
    out.normalizer = { ...spec.patch.normalizer, normalizers: spec.patch.normalizer.normalizers.map((n, i) => n === null ? baseNorms[i] : n) };
  }
  if (spec.model) out.model = { ...base.model, ...spec.model };
  return out;
}

function digest(e, decoded, decodedKeep) {
  const n = (a) => a.map((x) => (x === null || x === undefined ? '-' : String(x))).join(',');
  const ids = 'ids=' + n(e.getIds());
  const rest = [
    'type=' + n(e.getTypeIds()),
    'tok=' + e.getTokens().join('\u0001'),
    'off=' + e.getOffsets().map((o) => o[0] + ':' + o[1]).join(','),
    'sp=' + n(e.getSpecialTokensMask()),
    'att=' + n(e.getAttentionMask()),
    'w=' + n(e.getWordIds()),
    'seq=' + n(e.getSequenceIds()),
    'dec=' + decoded,
    'deck=' + decodedKeep,
  ].join('\n');
  const h = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 12);
  return h(ids) + h(ids + '\n' + rest);
}

function full(e) {
  return {
    ids: e.getIds(), type_ids: e.getTypeIds(), tokens: e.getTokens(), offsets: e.getOffsets(),
    special_tokens_mask: e.getSpecialTokensMask(), attention_mask: e.getAttentionMask(),
    word_ids: e.getWordIds(), sequence_ids: e.getSequenceIds(),
    overflowing: e.getOverflowing().map(full),
  };
}

const errMsg = (err) => ({ error: String(err && err.message ? err.message : err).slice(0, 200) });

async function encodeCase(t, text, pair, addSpecial, decode = true) {
  try {
    const e = await t.encode(text, pair, { addSpecialTokens: addSpecial });
    const r = full(e);
    if (decode) {
      r.decoded = await t.decode(e.getIds(), true);
      r.decoded_keep = await t.decode(e.getIds(), false);
    }
    return r;
  } catch (err) {
    return errMsg(err);
  }
}

// wouldPanic predicts whether Rust's Encoding::truncate would hit its `stride < max_len` assert
// (which aborts the process): from the windows of the same case with stride 0, a sequence that
// was cut to n > 0 tokens panics when stride >= n.
async function wouldPanic(base, t0, text, pair, add, stride) {
  let e;
  try {
    e = await t0.encode(text, pair, { addSpecialTokens: add });
  } catch (err) {
    return false;
  }
  const seqs = pair === null ? [text] : [text, pair];
  const counts = [0, 0];
  e.getSequenceIds().forEach((s) => { if (s !== null && s !== undefined) counts[s]++; });
  for (let i = 0; i < seqs.length; i++) {
    const full = (await base.encode(seqs[i], null, { addSpecialTokens: false })).getIds().length;
    if (counts[i] < full && counts[i] > 0 && stride >= counts[i]) return true;
  }
  return false;
}

// Options in tokenizer.json format; the Go test feeds them through the same parser.
const TRUNC = [
  { max_length: 8, stride: 0, strategy: 'LongestFirst', direction: 'Right' },
  { max_length: 10, stride: 3, strategy: 'LongestFirst', direction: 'Right' },
  { max_length: 10, stride: 2, strategy: 'LongestFirst', direction: 'Left' },
  { max_length: 12, stride: 1, strategy: 'OnlyFirst', direction: 'Right' },
  { max_length: 12, stride: 0, strategy: 'OnlySecond', direction: 'Left' },
  { max_length: 5, stride: 0, strategy: 'LongestFirst', direction: 'Right' },
  { max_length: 1, stride: 0, strategy: 'LongestFirst', direction: 'Right' },
  { max_length: 0, stride: 0, strategy: 'LongestFirst', direction: 'Right' },
  { max_length: 9, stride: 3, strategy: 'OnlyFirst', direction: 'Left' },
];
const PAD = [
  { strategy: { Fixed: 24 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 7, pad_type_id: 1, pad_token: '[PAD]' },
  { strategy: { Fixed: 20 }, direction: 'Left', pad_to_multiple_of: 8, pad_id: 0, pad_type_id: 0, pad_token: '<pad>' },
  { strategy: 'BatchLongest', direction: 'Right', pad_to_multiple_of: 8, pad_id: 3, pad_type_id: 2, pad_token: 'P' },
];
const BATCH = [
  { truncation: { max_length: 16, stride: 0, strategy: 'LongestFirst', direction: 'Right' },
    padding: { strategy: 'BatchLongest', direction: 'Right', pad_to_multiple_of: null, pad_id: 0, pad_type_id: 0, pad_token: '[PAD]' } },
  { truncation: { max_length: 12, stride: 4, strategy: 'LongestFirst', direction: 'Left' },
    padding: { strategy: { Fixed: 32 }, direction: 'Left', pad_to_multiple_of: 8, pad_id: 1, pad_type_id: 1, pad_token: '<p>' } },
  { truncation: null,
    padding: { strategy: 'BatchLongest', direction: 'Left', pad_to_multiple_of: 5, pad_id: 2, pad_type_id: 0, pad_token: 'x' } },
];

function proseLines() {
  const lines = [];
  for (const f of ['bench/testdata/short.txt', 'bench/testdata/passages.txt']) {
    lines.push(...fs.readFileSync(path.join(root, f), 'utf8').split('\n').filter((l) => l !== ''));
  }
  for (const name of ['bert-base-uncased', 'gpt2']) {
    const g = JSON.parse(fs.readFileSync(path.join(root, 'testdata/fixtures/real-tokenizers', name, 'golden.json'), 'utf8'));
    for (const s of g.single) lines.push(s.text);
  }
  return [...new Set(lines)];
}

// Deterministic pseudo-random numbers (mulberry32).
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Random sequences of combining marks, Hangul jamo and composing starters.
function markSequences() {
  const pool = [
    'a', 'e', 'o', 'A', 'E', 'u', 'i', 's', 'S', ' ', 'ß', '\u0130', '\u00e9', '\u1ec7',
    '\u0300', '\u0301', '\u0302', '\u0303', '\u0308', '\u030a', '\u0316', '\u0323', '\u0327', '\u0334',
    '\u0345', '\u05b0', '\u05bc', '\u0651', '\u064b', '\u093c', '\u094d', '\u0b47', '\u0b3e', '\u0b57',
    '\u0cc6', '\u0cd5', '\u0cc2', '\u0d46', '\u0d3e', '\u1100', '\u1161', '\u11a8', '\u11a7', '\uac00',
    '\u1ac0', '\u1abf', '\u1dfa', '\u{1e944}', '\u{11127}', '\u{11131}', '\u3099', '\u304b', '\u30cf',
    '\u309a', '\u0f71', '\u0f72', '\u0f74', '\u0f80', '\u0f40', '\u0fb7', '\u2126', '\u212b', '\u1e9b',
    '\ufb00', '\u3000', '\t', '\u0085', '\u200b', '\u00ad', '\ufeff', '\u2460', '\u00b2', '\u{1d400}', '\u{11938}',
  ];
  const r = rng(12345);
  const out = [];
  for (let k = 0; k < 400; k++) {
    let s = '';
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) s += pool[Math.floor(r() * pool.length)];
    out.push(s);
  }
  return out;
}

async function run(name, spec, prose) {
  const json = materialize(spec);
  const base = Tokenizer.fromString(JSON.stringify(json));
  const withOpts = (truncation, padding) => Tokenizer.fromString(JSON.stringify({ ...json, truncation, padding }));
  const out = { single: [], pairs: [], trunc: [], pad: [], batch: [], prose: '', decode: [], vocab: {} };
  for (const text of tricky) {
    for (const add of [true, false]) out.single.push({ text, add, ...(await encodeCase(base, text, null, add)) });
  }
  if (spec.extra === 'marks') {
    for (const text of markSequences()) out.single.push({ text, add: true, ...(await encodeCase(base, text, null, true)) });
  }
  for (const [a, b] of pairs) out.pairs.push({ text: a, pair: b, add: true, ...(await encodeCase(base, a, b, true)) });
  for (const tr of TRUNC) {
    const t = withOpts(tr, null);
    const t0 = withOpts({ ...tr, stride: 0 }, null);
    const cases = [];
    for (const text of truncTexts) for (const add of [true, false]) cases.push([text, null, add]);
    for (const [a, b] of truncPairs) cases.push([a, b, true]);
    for (const [text, pair, add] of cases) {
      if (tr.stride > 0 && await wouldPanic(base, t0, text, pair, add, tr.stride)) continue;
      out.trunc.push({ truncation: tr, text, ...(pair !== null ? { pair } : {}), add, ...(await encodeCase(t, text, pair, add, false)) });
    }
  }
  for (const pd of PAD) {
    const t = withOpts(null, pd);
    for (const text of truncTexts.slice(0, 4)) out.pad.push({ padding: pd, text, add: true, ...(await encodeCase(t, text, null, true, false)) });
    out.pad.push({ padding: pd, text: truncPairs[0][0], pair: truncPairs[0][1], add: true, ...(await encodeCase(t, truncPairs[0][0], truncPairs[0][1], true, false)) });
  }
  for (const b of BATCH) {
    const t = withOpts(b.truncation, b.padding);
    const texts = [...truncTexts, ...tricky.slice(30, 36)];
    try {
      const encs = await t.encodeBatch(texts, { addSpecialTokens: true });
      out.batch.push({ ...b, texts, encodings: encs.map(full) });
    } catch (err) {
      out.batch.push({ ...b, texts, ...errMsg(err) });
    }
  }
  const hashes = [];
  for (const line of prose) {
    const e = await base.encode(line, null, { addSpecialTokens: true });
    hashes.push(digest(e, await base.decode(e.getIds(), true), await base.decode(e.getIds(), false)));
  }
  out.prose = hashes.join('');
  const size = base.getVocabSize(true);
  out.vocab = { with_added: size, without_added: base.getVocabSize(false) };
  const rand = rng(name.length * 7919 + size);
  for (let k = 0; k < 40; k++) {
    const ids = [];
    const n = 1 + Math.floor(rand() * 30);
    while (ids.length < n) {
      const id = rand() < 0.15 ? Math.floor(rand() * 8) + (rand() < 0.5 ? 0 : Math.max(0, size - 8)) : Math.floor(rand() * size);
      if (base.idToToken(id) !== null) ids.push(id);
    }
    out.decode.push({ ids, decoded: await base.decode(ids, true), decoded_keep: await base.decode(ids, false) });
  }
  return out;
}

async function main() {
  const outPath = process.argv[2];
  if (!outPath) throw new Error('usage: make-goldens.js OUT.json.gz');
  const prose = proseLines();
  const res = {
    generator: 'make-goldens.js with npm tokenizers ' + require('tokenizers/package.json').version,
    prose,
    specs: {},
    results: {},
  };
  for (const [name, spec] of Object.entries(SPECS)) {
    const t0 = Date.now();
    const s = spec.base ? { base: spec.base } : { base: '', patch: materialize(spec) };
    if (spec.base && spec.patch) s.patch = spec.patch;
    if (spec.model) s.model = spec.model;
    res.specs[name] = s;
    res.results[name] = await run(name, spec, prose);
    console.error(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  fs.writeFileSync(outPath, zlib.gzipSync(JSON.stringify(res), { level: 9 }));
}

main().catch((e) => { console.error(e); process.exit(1); });
