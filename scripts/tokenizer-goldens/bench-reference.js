#!/usr/bin/env node
// bench-reference.js: throughput of the reference Rust tokenizers (npm binding) on the benchmark
// corpora with bert-base-uncased, through encodeBatch (one N-API call per batch of 64 lines) so
// that the binding's per-call overhead stays small. Run with RAYON_NUM_THREADS=1 for one thread:
//   RAYON_NUM_THREADS=1 node bench-reference.js
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const root = path.resolve(__dirname, '../..');
const tok = Tokenizer.fromFile(path.join(root, 'testdata/fixtures/real-tokenizers/bert-base-uncased/tokenizer.json'));

async function run(file, reps) {
  const lines = fs.readFileSync(path.join(root, 'bench/testdata', file), 'utf8').split('\n').filter((l) => l);
  const batches = [];
  for (let i = 0; i < lines.length; i += 64) batches.push(lines.slice(i, i + 64));
  let best = Infinity, bestCPU = Infinity, tokens = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    let n = 0;
    for (const b of batches) for (const e of await tok.encodeBatch(b, { addSpecialTokens: true })) n += e.getLength();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6; // whole process: every thread, V8 included
    if (dt < best) { best = dt; tokens = n; }
    bestCPU = Math.min(bestCPU, cpu);
  }
  console.log(`${file}: ${tokens} tokens, best of ${reps}: ${(best * 1000).toFixed(1)} ms, ` +
    `${Math.round(tokens / best)} tokens/s, ${Math.round(tokens / bestCPU)} tokens/cpu-s`);
}

(async () => {
  await run('short.txt', 5);
  await run('passages.txt', 5);
})();
