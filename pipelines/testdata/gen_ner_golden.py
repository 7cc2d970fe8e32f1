#!/usr/bin/env python3
"""Reference outputs of transformers' token-classification pipeline for new inputs.

No transformers install is available here, so this script re-implements the pipeline's
postprocess (transformers 5.17 src/transformers/pipelines/token_classification.py:
postprocess, gather_pre_entities, aggregate, aggregate_word(s), group_entities,
group_sub_entities, aggregate_overlapping_entities) with numpy on float32 logits, plus
convert_ids_to_tokens / convert_tokens_to_string of a WordPiece tokenizer.json. It is written
independently of the Go pipeline, from the Python source, to serve as its reference.

Inputs come from `ner_inputs.json`, written by the Go test TestDumpNERInputs
(INFERGO_GEN_NER=path): per case the whole text's encoding (ids, character offsets,
special-tokens mask, sequence ids from the pure-Go tokenizer, which matches Rust tokenizers
exactly) and, for each window the Go pipeline ran, its inputs and the logits ONNX Runtime
computed. The script checks those windows against its own split of the whole encoding
(split_windows) before using the logits.

Usage: python3 gen_ner_golden.py FIXTURE_DIR ner_inputs.json > ner_new_inputs.json
(needs numpy; Debian: /usr/bin/python3 with python3-numpy)
"""
import json
import sys

import numpy as np

STRATEGIES = ["none", "simple", "first", "average", "max"]


class WordPieceTokenizer:
    def __init__(self, fixture):
        with open(f"{fixture}/tokenizer.json") as f:
            tj = json.load(f)
        with open(f"{fixture}/tokenizer_config.json") as f:
            tc = json.load(f)
        model = tj["model"]
        assert model["type"] == "WordPiece"
        self.id_to_token = {i: t for t, i in model["vocab"].items()}
        for a in tj["added_tokens"]:
            self.id_to_token[a["id"]] = a["content"]
        self.prefix = model.get("continuing_subword_prefix", "##")
        dec = tj["decoder"]
        assert dec["type"] == "WordPiece"
        self.dec_prefix, self.cleanup = dec["prefix"], dec["cleanup"]
        self.unk_token_id = model["vocab"].get(tc.get("unk_token"))

    def convert_ids_to_tokens(self, i):
        return self.id_to_token[int(i)]

    def convert_tokens_to_string(self, tokens):
        # tokenizers' WordPiece decoder (decode_chain, then concatenation)
        out = []
        for i, t in enumerate(tokens):
            if i != 0:
                t = t[len(self.dec_prefix):] if t.startswith(self.dec_prefix) else " " + t
            if self.cleanup:
                for a, b in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                             (" n't", "n't"), (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"),
                             (" 've", "'ve"), (" 're", "'re")]:
                    t = t.replace(a, b)
            out.append(t)
        return "".join(out)


class Pipeline:
    def __init__(self, fixture):
        self.tokenizer = WordPieceTokenizer(fixture)
        with open(f"{fixture}/config.json") as f:
            cfg = json.load(f)
        self.id2label = {int(k): v for k, v in cfg["id2label"].items()}

    def postprocess(self, sentence, windows, shifts, strategy, ignore_labels=("O",)):
        all_entities = []
        for w, shift in zip(windows, shifts):
            logits = np.array(w["logits"], dtype=np.float32)
            maxes = np.max(logits, axis=-1, keepdims=True)
            shifted_exp = np.exp(logits - maxes)
            scores = shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)
            pre = self.gather_pre_entities(sentence, w["input_ids"], scores, w["offsets"],
                                           w["special_tokens_mask"], shift)
            grouped = self.aggregate(pre, strategy)
            all_entities.extend(e for e in grouped
                                if e.get("entity") not in ignore_labels
                                and e.get("entity_group") not in ignore_labels)
        if len(windows) > 1:
            all_entities = self.aggregate_overlapping_entities(all_entities)
        return all_entities

    def gather_pre_entities(self, sentence, input_ids, scores, offsets, special, shift):
        pre = []
        for idx, token_scores in enumerate(scores):
            if special[idx]:
                continue
            word = self.tokenizer.convert_ids_to_tokens(input_ids[idx])
            start, end = offsets[idx]
            word_ref = sentence[start:end]
            if self.tokenizer.prefix:
                is_subword = len(word) != len(word_ref)
            else:
                is_subword = start > 0 and " " not in sentence[start - 1:start + 1]
            if int(input_ids[idx]) == self.tokenizer.unk_token_id:
                word = word_ref
                is_subword = False
            pre.append({"word": word, "scores": token_scores, "start": start, "end": end,
                        "index": idx + shift, "is_subword": is_subword})
        return pre

    def aggregate(self, pre, strategy):
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                k = p["scores"].argmax()
                entities.append({"entity": self.id2label[k], "score": p["scores"][k],
                                 "index": p["index"], "word": p["word"],
                                 "start": p["start"], "end": p["end"]})
        else:
            entities = self.aggregate_words(pre, strategy)
        if strategy == "none":
            return entities
        return self.group_entities(entities)

    def aggregate_word(self, entities, strategy):
        word = self.tokenizer.convert_tokens_to_string([e["word"] for e in entities])
        if strategy == "first":
            scores = entities[0]["scores"]
            k = scores.argmax()
            score, entity = scores[k], self.id2label[k]
        elif strategy == "max":
            best = max(entities, key=lambda e: e["scores"].max())
            k = best["scores"].argmax()
            score, entity = best["scores"][k], self.id2label[k]
        else:
            avg = np.nanmean(np.stack([e["scores"] for e in entities]), axis=0)
            k = avg.argmax()
            score, entity = avg[k], self.id2label[k]
        return {"entity": entity, "score": score, "word": word,
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    def aggregate_words(self, entities, strategy):
        out, group = [], None
        for e in entities:
            if group is None:
                group = [e]
            elif e["is_subword"]:
                group.append(e)
            else:
                out.append(self.aggregate_word(group, strategy))
                group = [e]
        if group is not None:
            out.append(self.aggregate_word(group, strategy))
        return out

    @staticmethod
    def get_tag(name):
        if name.startswith("B-"):
            return "B", name[2:]
        if name.startswith("I-"):
            return "I", name[2:]
        return "I", name

    def group_sub_entities(self, entities):
        scores = np.nanmean([e["score"] for e in entities])
        return {"entity_group": entities[0]["entity"].split("-", 1)[-1],
                "score": np.mean(scores),
                "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in entities]),
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    def group_entities(self, entities):
        groups, disagg = [], []
        for e in entities:
            if not disagg:
                disagg.append(e)
                continue
            bi, tag = self.get_tag(e["entity"])
            _, last_tag = self.get_tag(disagg[-1]["entity"])
            if tag == last_tag and bi != "B":
                disagg.append(e)
            else:
                groups.append(self.group_sub_entities(disagg))
                disagg = [e]
        if disagg:
            groups.append(self.group_sub_entities(disagg))
        return groups

    @staticmethod
    def aggregate_overlapping_entities(entities):
        if not entities:
            return entities
        entities = sorted(entities, key=lambda x: x["start"])
        out, prev = [], entities[0]
        for e in entities:
            if prev["start"] <= e["start"] < prev["end"]:
                cur_len, prev_len = e["end"] - e["start"], prev["end"] - prev["start"]
                if cur_len > prev_len or cur_len == prev_len and e["score"] > prev["score"]:
                    prev = e
            else:
                out.append(prev)
                prev = e
        out.append(prev)
        return out


def split_windows(full, max_length, stride):
    """tokenizers' Encoding.truncate(max_length - specials, stride) + post-processing of the
    whole encoding (without tokenizers 0.23's early exit, which drops the tail of long texts):
    windows of text tokens overlapping by `stride`, each wrapped in the template's special
    tokens. Returns (window encodings, index shifts); windows without text are dropped."""
    n = len(full["input_ids"])
    content_idx = [i for i, s in enumerate(full["sequence_ids"]) if s == 0]
    if not content_idx:
        return [], []
    if n <= max_length:
        return [full], [0]
    lo, hi = content_idx[0], content_idx[-1] + 1
    content = max_length - lo - (n - hi)
    step = content - stride
    assert step > 0
    keys = ("input_ids", "offsets", "special_tokens_mask", "sequence_ids")
    wins, shifts, start = [], [], lo
    while True:
        stop = min(start + content, hi)
        wins.append({k: full[k][:lo] + full[k][start:stop] + full[k][hi:] for k in keys})
        shifts.append(start - lo)
        if stop == hi:
            return wins, shifts
        start += step


def plain(entities):
    # What the containers serialise: numpy scalars as Python numbers.
    res = []
    for e in entities:
        d = {}
        for k, v in e.items():
            d[k] = float(v) if isinstance(v, np.floating) else int(v) if isinstance(v, np.integer) else v
        res.append(d)
    return res


def main():
    fixture, dump = sys.argv[1], sys.argv[2]
    pipe = Pipeline(fixture)
    with open(dump) as f:
        cases = json.load(f)
    out = []
    for c in cases:
        res = {k: c[k] for k in ("name", "text", "max_length", "stride")}
        # The Go pipeline's windows must be exactly the reference split of the whole text.
        wins, shifts = split_windows(c["full"], c["max_length"], c["stride"])
        assert len(wins) == len(c["windows"]), (c["name"], len(wins), len(c["windows"]))
        for a, b in zip(wins, c["windows"]):
            for k in ("input_ids", "offsets", "special_tokens_mask"):
                assert [list(x) if isinstance(x, list) else x for x in a[k]] == b[k], (c["name"], k)
        for s in STRATEGIES:
            res["pipeline_" + s] = plain(pipe.postprocess(c["text"], c["windows"], shifts, s))
        res["windows"] = len(c["windows"])
        out.append(res)
    # One case per line: small, and diffs stay readable.
    sys.stdout.write('{"generator": "gen_ner_golden.py (numpy ' + np.__version__ + ')", "cases": [\n')
    sys.stdout.write(",\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in out))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main()
