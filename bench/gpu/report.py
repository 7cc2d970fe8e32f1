#!/usr/bin/env python3
"""Merges bench/gpu results (Go and PyTorch JSON lists) into one JSON file and a markdown table:
rows are variant/mode, columns the shapes (seq/s; p50 ms for batch 1), plus each row's ratio to
PyTorch fp16 at 256x128."""
import json
import sys


def main():
    out_json, out_md, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = []
    for p in inputs:
        try:
            with open(p) as f:
                rows += json.load(f)
        except (OSError, ValueError) as e:
            rows.append({"variant": p, "mode": "-", "error": f"unreadable: {e}"})
    with open(out_json, "w") as f:
        json.dump(rows, f, indent=2)
    shapes = []
    for r in rows:
        if r.get("shape") and r["shape"] not in shapes:
            shapes.append(r["shape"])
    ref = next((r["seq_per_s"] for r in rows if r.get("variant") == "torch-fp16" and r.get("shape") == "256x128"), None)
    table = {}
    for r in rows:
        key = (r.get("variant"), r.get("mode"))
        cell = "error: " + r["error"][:60] if r.get("error") else (
            f'{r["p50_ms"]:.2f} ms' if r.get("shape", "").startswith("1x") else f'{r["seq_per_s"]:,.0f}/s')
        table.setdefault(key, {})[r.get("shape", "")] = (cell, r)
    lines = ["| variant | mode | " + " | ".join(shapes) + " | 256x128 vs torch-fp16 |",
             "|---|---|" + "---|" * len(shapes) + "---|"]
    for (variant, mode), cells in table.items():
        ratio = ""
        r256 = cells.get("256x128", (None, {}))[1]
        if ref and r256.get("seq_per_s"):
            ratio = f'{r256["seq_per_s"] / ref:.2f}x'
        lines.append(f"| {variant} | {mode} | " + " | ".join(cells.get(s, ("",))[0] for s in shapes) + f" | {ratio} |")
    md = "\n".join(lines) + "\n\nsched/model: one client, pre-tokenized batch, pooled [batch, hidden] back on the host; " \
         "e2e: the embeddings pipeline (tokenization included) from concurrent clients. 1xN cells: p50 latency.\n"
    with open(out_md, "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
