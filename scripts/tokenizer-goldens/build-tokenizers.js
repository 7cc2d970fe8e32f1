#!/usr/bin/env node
// build-tokenizers.js OUTDIR
//
// Builds the small tokenizer.json fixtures the goldens need beyond the shared ones, and writes
// them gzipped to OUTDIR (tokenize/testdata/tokenizers):
//   t5_unigram      SentencePiece Unigram trained with Debian's spm_train (nmt_nfkc, so a real
//                   Precompiled charsmap), converted the way transformers' T5 converter does.
//   llama_bpe       SentencePiece BPE with byte_fallback (Llama 2 layout: Prepend/Replace
//                   normalizers, byte-fallback BPE, Replace/ByteFallback/Fuse/Strip decoder).
//   wordlevel       WordLevel on the corpus words, TemplateProcessing with a two-id special token.
//   bpe_suffix      Classic BPE with continuing_subword_prefix "##" and end_of_word_suffix "</w>",
//                   trained here in JavaScript.
//   ctc_chars       Character WordLevel vocabulary with a CTC decoder.
// Requires spm_train (apt-get install sentencepiece). Deterministic for a given corpus.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '../..');
const corpusFiles = [
  path.join(root, 'bench/testdata/short.txt'),
  path.join(root, 'bench/testdata/passages.txt'),
  path.join(__dirname, 'corpus/multilingual.txt'),
];

// --- a minimal protobuf reader for SentencePiece's ModelProto ---
function readVarint(buf, pos) {
  let result = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [result, pos];
    shift += 7n;
  }
}

function* fields(buf) {
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n), wire = Number(key & 7n);
    if (wire === 0) { let v; [v, pos] = readVarint(buf, pos); yield [field, wire, v]; }
    else if (wire === 1) { yield [field, wire, buf.subarray(pos, pos + 8)]; pos += 8; }
    else if (wire === 2) { let len; [len, pos] = readVarint(buf, pos); yield [field, wire, buf.subarray(pos, pos + Number(len))]; pos += Number(len); }
    else if (wire === 5) { yield [field, wire, buf.subarray(pos, pos + 4)]; pos += 4; }
    else throw new Error('unsupported wire type ' + wire);
  }
}

function readModel(file) {
  const buf = fs.readFileSync(file);
  const model = { pieces: [], charsmap: null, trainer: {} };
  for (const [f, , v] of fields(buf)) {
    if (f === 1) {
      const p = { piece: '', score: 0, type: 1 };
      for (const [g, , w] of fields(v)) {
        if (g === 1) p.piece = Buffer.from(w).toString('utf8');
        else if (g === 2) p.score = Buffer.from(w).readFloatLE(0);
        else if (g === 3) p.type = Number(w);
      }
      model.pieces.push(p);
    } else if (f === 3) {
      for (const [g, , w] of fields(v)) if (g === 2) model.charsmap = Buffer.from(w);
    }
  }
  return model;
}

function spmTrain(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spm-'));
  const input = path.join(dir, 'corpus.txt');
  fs.writeFileSync(input, corpusFiles.map((f) => fs.readFileSync(f, 'utf8')).join('\n'));
  const prefix = path.join(dir, 'm');
  execFileSync('spm_train', [`--input=${input}`, `--model_prefix=${prefix}`, '--num_threads=1',
    '--seed_sentencepiece_size=100000', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  return readModel(prefix + '.model');
}

const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const tpl = (id, type_id) => ({ SpecialToken: { id, type_id } });
const seq = (id, type_id) => ({ Sequence: { id, type_id } });

function t5Unigram() {
  const m = spmTrain(['--model_type=unigram', '--vocab_size=1200', '--character_coverage=1.0',
    '--pad_id=0', '--eos_id=1', '--unk_id=2', '--bos_id=-1']);
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')],
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Precompiled', precompiled_charsmap: m.charsmap.toString('base64') },
      { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
    ] },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: { type: 'TemplateProcessing',
      single: [seq('A', 0), tpl('</s>', 0)],
      pair: [seq('A', 0), tpl('</s>', 0), seq('B', 0), tpl('</s>', 0)],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } } },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 2, vocab: m.pieces.map((p) => [p.piece, p.score]), byte_fallback: false },
  };
}

// SentencePieceExtractor.extract of transformers: merges from the vocabulary, ordered by score.
function extractMerges(pieces) {
  const vocab = new Map(pieces.map((p, i) => [p.piece, i]));
  const merges = [];
  for (const p of pieces) {
    const chars = Array.from(p.piece);
    const local = [];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join(''), r = chars.slice(i).join('');
      if (vocab.has(l) && vocab.has(r)) local.push([l, r, p.score]);
    }
    local.sort((a, b) => (vocab.get(a[0]) - vocab.get(b[0])) || (vocab.get(a[1]) - vocab.get(b[1])));
    merges.push(...local);
  }
  // Stable sort by score, descending.
  return merges.map((m, i) => [m, i]).sort((a, b) => (b[0][2] - a[0][2]) || (a[1] - b[1])).map(([m]) => [m[0], m[1]]);
}

function llamaBPE() {
  const m = spmTrain(['--model_type=bpe', '--vocab_size=1200', '--character_coverage=0.9995',
    '--byte_fallback=true', '--split_digits=true', '--normalization_rule_name=identity',
    '--remove_extra_whitespaces=false', '--unk_id=0', '--bos_id=1', '--eos_id=2']);
  const vocab = {};
  m.pieces.forEach((p, i) => { vocab[p.piece] = i; });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Prepend', prepend: '▁' },
      { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    ] },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing',
      single: [tpl('<s>', 0), seq('A', 0)],
      pair: [tpl('<s>', 0), seq('A', 0), tpl('<s>', 1), seq('B', 1)],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
    decoder: { type: 'Sequence', decoders: [
      { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
      { type: 'ByteFallback' }, { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab, merges: extractMerges(m.pieces) },
  };
}

function corpusWords() {
  const text = corpusFiles.map((f) => fs.readFileSync(f, 'utf8')).join('\n').toLowerCase();
  const counts = new Map();
  for (const w of text.match(/[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]+/gu)) counts.set(w, (counts.get(w) || 0) + 1);
  return [...counts.entries()].sort((a, b) => (b[1] - a[1]) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function wordLevel() {
  const vocab = { '[UNK]': 0, '[CLS]': 1, '[SEP]': 2, '[PAD]': 3, '<a>': 4, '<b>': 5 };
  for (const [w] of corpusWords().slice(0, 1500)) if (!(w in vocab)) vocab[w] = Object.keys(vocab).length;
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '[UNK]'), special(1, '[CLS]'), special(2, '[SEP]'), special(3, '[PAD]')],
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: { type: 'TemplateProcessing',
      single: [tpl('[CLS]', 0), seq('A', 0), tpl('<ab>', 0), tpl('[SEP]', 0)],
      pair: [tpl('[CLS]', 0), seq('A', 0), tpl('[SEP]', 0), seq('B', 1), tpl('<ab>', 1), tpl('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [1], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [2], tokens: ['[SEP]'] },
        '<ab>': { id: '<ab>', ids: [4, 5], tokens: ['<a>', '<b>'] },
      } },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
  };
}

// A small classic BPE trainer: symbols carry "##" when not first and "</w>" when last, and a
// merge (a, b) makes a + b without b's prefix, as tokenizers' BPE expects.
function bpeSuffix() {
  const words = corpusWords().filter(([w]) => /^[\p{L}\p{N}]+$/u.test(w)).slice(0, 4000);
  const seqs = words.map(([w, n]) => {
    const cs = Array.from(w);
    return { n, syms: cs.map((c, i) => (i ? '##' : '') + c + (i === cs.length - 1 ? '</w>' : '')) };
  });
  const vocab = new Map([['<unk>', 0]]);
  const add = (s) => { if (!vocab.has(s)) vocab.set(s, vocab.size); };
  for (const s of seqs) s.syms.forEach(add);
  const merges = [];
  for (let k = 0; k < 1500; k++) {
    const counts = new Map();
    for (const s of seqs) for (let i = 0; i + 1 < s.syms.length; i++) {
      const key = s.syms[i] + '\u0000' + s.syms[i + 1];
      counts.set(key, (counts.get(key) || 0) + s.n);
    }
    let best = null, bestN = 0;
    for (const [key, n] of counts) if (n > bestN || (n === bestN && key < best)) { best = key; bestN = n; }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    const merged = a + b.slice(2);
    add(merged);
    merges.push([a, b]);
    for (const s of seqs) {
      const out = [];
      for (let i = 0; i < s.syms.length; i++) {
        if (i + 1 < s.syms.length && s.syms[i] === a && s.syms[i + 1] === b) { out.push(merged); i++; } else out.push(s.syms[i]);
      }
      s.syms = out;
    }
  }
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: { type: 'BPEDecoder', suffix: '</w>' },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: '##',
      end_of_word_suffix: '</w>', fuse_unk: true, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(vocab), merges },
  };
}

function ctcChars() {
  const vocab = { '<pad>': 0, '<s>': 1, '</s>': 2, '<unk>': 3, '|': 4 };
  for (const c of "ETAONIHSRDLUMWCFGYPBVK'XJQZ") vocab[c] = Object.keys(vocab).length;
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '<s>'), special(2, '</s>'), special(3, '<unk>')],
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '|' },
    pre_tokenizer: { type: 'Split', pattern: { Regex: '.' }, behavior: 'Isolated', invert: false },
    post_processor: null,
    decoder: { type: 'CTC', pad_token: '<pad>', word_delimiter_token: '|', cleanup: true },
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
}

function main() {
  const out = process.argv[2];
  if (!out) throw new Error('usage: build-tokenizers.js OUTDIR');
  fs.mkdirSync(out, { recursive: true });
  const all = { t5_unigram: t5Unigram(), llama_bpe: llamaBPE(), wordlevel: wordLevel(), bpe_suffix: bpeSuffix(), ctc_chars: ctcChars() };
  const { Tokenizer } = require('tokenizers');
  for (const [name, json] of Object.entries(all)) {
    const s = JSON.stringify(json);
    Tokenizer.fromString(s); // must load in the reference
    fs.writeFileSync(path.join(out, name + '.json.gz'), zlib.gzipSync(s, { level: 9 }));
    console.error(`${name}: ${s.length} bytes`);
  }
}

main();
