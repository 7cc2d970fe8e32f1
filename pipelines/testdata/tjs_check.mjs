// Second opinion for the token-classification goldens: transformers.js (an independent
// tokenizer, ONNX Runtime binding and softmax) on the tiny-bert-ner fixture, aggregation
// "none", against pipelines/testdata/ner_new_inputs.json (single-window cases) and the fixture's
// pipeline_none. transformers.js drops [UNK] tokens (it decodes them with skip_special_tokens)
// and cannot window long texts, so those are skipped. Run from a scratch folder:
//   npm install --ignore-scripts @huggingface/transformers@4.3.1
//   mkdir -p models && cp -r $REPO/testdata/fixtures/tiny-bert-ner models/
//   cp $REPO/pipelines/testdata/tjs_check.mjs . && REPO=$REPO node tjs_check.mjs
// Last run (2026-11-23): 15 texts, 273 tokens compared, 0 mismatches, max score difference 5.4e-7.
import { pipeline, env } from '@huggingface/transformers';
import fs from 'fs';
env.allowRemoteModels = false;
env.localModelPath = './models/';
const golden = JSON.parse(fs.readFileSync(process.env.REPO + '/pipelines/testdata/ner_new_inputs.json', 'utf8'));
const fixture = JSON.parse(fs.readFileSync(process.env.REPO + '/testdata/fixtures/tiny-bert-ner/golden.json', 'utf8'));
const ner = await pipeline('token-classification', 'tiny-bert-ner', { dtype: 'fp32' });
let cases = golden.cases.filter(c => c.windows === 1).map(c => [c.name, c.text, c.pipeline_none]);
fixture.texts.forEach((t, i) => cases.push(['fixture' + i, t, fixture.pipeline_none[i]]));
let compared = 0, maxd = 0, mismatches = 0, skipped = 0;
for (const [name, text, want] of cases) {
  const got = await ner(text, { ignore_labels: ['O'] });
  const byIndex = new Map(got.map(e => [e.index, e]));
  for (const w of want) {
    const g = byIndex.get(w.index);
    if (!g) { skipped++; console.log('missing in tjs (unk?)', name, JSON.stringify(w)); continue; }
    compared++;
    const d = Math.abs(g.score - w.score); maxd = Math.max(maxd, d);
    if (g.entity !== w.entity || g.word !== w.word || d > 1e-4) { mismatches++; console.log('MISMATCH', name, JSON.stringify(g), JSON.stringify(w)); }
    byIndex.delete(w.index);
  }
  for (const g of byIndex.values()) { mismatches++; console.log('EXTRA in tjs', name, JSON.stringify(g)); }
}
console.log(JSON.stringify({ cases: cases.length, compared, skipped, mismatches, max_score_diff: maxd }));
