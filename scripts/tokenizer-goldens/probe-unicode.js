#!/usr/bin/env node
// probe-unicode.js OUT.json.gz
//
// Asks the reference Rust tokenizers (npm binding) how every Unicode scalar value is classified by
// each character predicate and per-character normalizer the tokenizers use, and writes the answers
// compactly. The Go tests compare the Go tables against this file for every code point, so Unicode
// version differences between Go (unicode 15.0, x/text) and the Rust crates (Rust std, onig,
// unicode_categories, unicode-normalization-alignments) are caught exhaustively.
//
// Sets are written as sorted [lo, hi] ranges; mappings as {codepoint: output} for the code points
// whose output differs from the input character.
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const { Tokenizer } = require('tokenizers');

const MAX = 0x10ffff;
const isSurrogate = (c) => c >= 0xd800 && c <= 0xdfff;

function tokenizer(normalizer, preTokenizer) {
  return Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [],
    normalizer, pre_tokenizer: preTokenizer, post_processor: null, decoder: null,
    model: { type: 'WordLevel', vocab: { '[UNK]': 0 }, unk_token: '[UNK]' },
  }));
}

function toRanges(set) {
  const cps = [...set].sort((a, b) => a - b);
  const out = [];
  for (const c of cps) {
    const last = out[out.length - 1];
    if (last && last[1] === c - 1) last[1] = c; else out.push([c, c]);
  }
  return out;
}

// Code points in chunks; each chunk is a list of scalar values (no surrogates).
function* chunks(size) {
  let cur = [];
  for (let c = 0; c <= MAX; c++) {
    if (isSurrogate(c)) continue;
    cur.push(c);
    if (cur.length === size) { yield cur; cur = []; }
  }
  if (cur.length) yield cur;
}

// removedSet: the pre-tokenizer drops exactly the characters of the set (behavior Removed). The
// splits' char offsets then show which input characters survived.
function removedSet(pre) {
  const pt = tokenizer(null, pre).getPreTokenizer();
  const set = new Set();
  for (const chunk of chunks(4096)) {
    const text = String.fromCodePoint(...chunk);
    const kept = new Uint8Array(chunk.length);
    for (const [, [s, e]] of pt.preTokenizeString(text)) for (let i = s; i < e; i++) kept[i] = 1;
    chunk.forEach((c, i) => { if (!kept[i]) set.add(c); });
  }
  return toRanges(set);
}

// isolatedSet: the pre-tokenizer isolates the characters of the set (Isolated or Contiguous) and
// keeps everything else in runs. Each probe character sits between two copies of `sep` (a
// character known not to be in the set); a probe is in the set iff it forms a split of its own.
function isolatedSet(pre, sep) {
  const pt = tokenizer(null, pre).getPreTokenizer();
  const set = new Set();
  for (const chunk of chunks(4096)) {
    const text = sep + chunk.map((c) => String.fromCodePoint(c)).join(sep) + sep;
    const alone = new Set();
    for (const [, [s, e]] of pt.preTokenizeString(text)) if (e - s === 1 && s % 2 === 1) alone.add((s - 1) / 2);
    chunk.forEach((c, i) => { if (alone.has(i)) set.add(c); });
  }
  return toRanges(set);
}

// mapping: output of a normalizer for each character alone, when it differs from the input.
function mapping(norm) {
  const n = tokenizer(norm, null).getNormalizer();
  const out = {};
  for (let c = 0; c <= MAX; c++) {
    if (isSurrogate(c)) continue;
    const s = String.fromCodePoint(c);
    const r = n.normalizeString(s);
    if (r !== s) out[c] = r;
  }
  return out;
}

function main() {
  const outPath = process.argv[2];
  if (!outPath) throw new Error('usage: probe-unicode.js OUT.json.gz');
  const split = (re) => ({ type: 'Split', pattern: { Regex: re }, behavior: 'Removed', invert: false });
  const t0 = Date.now();
  const res = {
    generator: 'probe-unicode.js with npm tokenizers ' + require('tokenizers/package.json').version,
    sets: {
      onig_space: removedSet(split('\\s')),
      onig_letter: removedSet(split('\\p{L}')),
      onig_number: removedSet(split('\\p{N}')),
      onig_word: removedSet(split('\\w')),
      onig_digit: removedSet(split('\\d')),
      rust_whitespace: removedSet({ type: 'WhitespaceSplit' }),
      punctuation: removedSet({ type: 'Punctuation', behavior: 'Removed' }),
      rust_numeric: isolatedSet({ type: 'Digits', individual_digits: true }, 'a'),
      // Whitespace pre-tokenizer: \w+|[^\w\s]+ (Rust regex crate). With '!' separators a \w
      // character stands alone; a \s character is dropped (also "not alone").
      regex_word: isolatedSet({ type: 'Whitespace' }, '!'),
      regex_space: removedSet({ type: 'Whitespace' }),
    },
    // onig general categories (Unicode 16), for regex classes like \p{Lu}.
    categories: {},
    maps: {},
  };
  const maps = {
    nfd: { type: 'NFD' }, nfkd: { type: 'NFKD' }, nfc: { type: 'NFC' }, nfkc: { type: 'NFKC' },
    lowercase: { type: 'Lowercase' },
    strip_accents: { type: 'StripAccents' },
    bert_clean: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: false, lowercase: false },
    bert_strip: { type: 'BertNormalizer', clean_text: false, handle_chinese_chars: false, strip_accents: true, lowercase: false },
    bert_chinese: { type: 'BertNormalizer', clean_text: false, handle_chinese_chars: true, strip_accents: false, lowercase: false },
    nmt: { type: 'Nmt' },
  };
  for (const cat of ['Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'Mn', 'Mc', 'Me', 'Nd', 'Nl', 'No', 'Pc', 'Pd', 'Ps', 'Pe',
    'Pi', 'Pf', 'Po', 'Sm', 'Sc', 'Sk', 'So', 'Zs', 'Zl', 'Zp', 'Cc', 'Cf', 'Co']) {
    res.categories[cat] = removedSet(split(`\\p{${cat}}`));
  }
  for (const [k, v] of Object.entries(maps)) res.maps[k] = mapping(v);
  // Large mappings that are really sets: store them as ranges.
  const setOf = (m, pred) => toRanges(new Set(Object.entries(m).filter(([, o]) => pred(o)).map(([c]) => +c)));
  const clean = res.maps.bert_clean;
  res.sets.bert_clean_removed = setOf(clean, (o) => o === '');
  res.sets.bert_clean_space = setOf(clean, (o) => o === ' ');
  if (Object.values(clean).some((o) => o !== '' && o !== ' ')) throw new Error('unexpected bert_clean output');
  delete res.maps.bert_clean;
  const chinese = res.maps.bert_chinese;
  res.sets.bert_chinese = setOf(chinese, () => true);
  for (const [c, o] of Object.entries(chinese)) {
    if (o !== ' ' + String.fromCodePoint(+c) + ' ') throw new Error('unexpected bert_chinese output');
  }
  delete res.maps.bert_chinese;
  const strip = res.maps.strip_accents;
  res.sets.strip_accents_removed = setOf(strip, (o) => o === '');
  if (Object.values(strip).some((o) => o !== '')) throw new Error('unexpected strip_accents output');
  delete res.maps.strip_accents;
  fs.writeFileSync(outPath, zlib.gzipSync(JSON.stringify(res), { level: 9 }));
  console.error(`wrote ${outPath} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main();
