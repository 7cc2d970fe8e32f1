#!/usr/bin/env python3
"""Merges bench/gpu results (Go and PyTorch JSON lists) into one JSON file and a markdown table:
rows are variant/mode, columns the shapes (seq/s; p50 ms for batch 1), plus each row's ratio to
PyTorch fp16 at 256x128. With --profiles DIR it appends, per profiled variant, where ONNX
Runtime's time goes (node time per run by operator and provider, from its profiler's JSON), and
with --notes FILE that file's text (the run's step log)."""
import argparse
import collections
import glob
import json
import os


def table(rows):
    shapes = []
    for r in rows:
        if r.get("shape") and r["shape"] not in shapes:
            shapes.append(r["shape"])
    ref = next((r["seq_per_s"] for r in rows if r.get("variant") == "torch-fp16" and r.get("shape") == "256x128"), None)
    cells = {}
    for r in rows:
        key = (r.get("variant"), r.get("mode", "-"))
        if r.get("error"):
            cell = "error: " + r["error"][:80]
        elif str(r.get("shape", "")).startswith("1x"):
            cell = f'{r["p50_ms"]:.2f} ms'
        else:
            cell = f'{r["seq_per_s"]:,.0f}/s'
        cells.setdefault(key, {})[r.get("shape", "")] = (cell, r)
    lines = ["| variant | mode | " + " | ".join(shapes) + " | 256x128 vs torch-fp16 |",
             "|---|---|" + "---|" * len(shapes) + "---|"]
    for (variant, mode), cs in cells.items():
        ratio = ""
        r256 = cs.get("256x128", (None, {}))[1]
        if ref and r256.get("seq_per_s"):
            ratio = f'{r256["seq_per_s"] / ref:.2f}x'
        row = [cs.get(s, ("",))[0] for s in shapes]
        if "" in cs and not any(row):
            row[0] = cs[""][0]
        lines.append(f"| {variant} | {mode} | " + " | ".join(row) + f" | {ratio} |")
    return "\n".join(lines) + ("\n\nsched/model: one client, pre-tokenized batch, pooled [batch, hidden] back on the host; "
                               "e2e: the embeddings pipeline (tokenization included) from concurrent clients. "
                               "1xN cells: p50 latency.\n")


def profiles(d):
    out = []
    newest = {}
    for p in sorted(glob.glob(os.path.join(d, "*.json"))):
        variant = os.path.basename(p).rsplit("_", 3)[0]  # ORT appends _YYYY-MM-DD_HH-MM-SS_mmm
        if os.path.getsize(p) >= os.path.getsize(newest.get(variant, p)):
            newest[variant] = p  # the session's profile, not the info session's
    for variant, p in sorted(newest.items()):
        try:
            events = json.load(open(p))
        except (OSError, ValueError) as e:
            out.append(f"\n{variant}: unreadable profile ({e})\n")
            continue
        runs = max(1, sum(1 for e in events if e.get("name") == "model_run"))
        run_us = sum(e.get("dur", 0) for e in events if e.get("name") == "model_run") / runs
        by = collections.Counter()
        count = collections.Counter()
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                a = e.get("args", {})
                k = (a.get("op_name", "?"), a.get("provider", "?"))
                by[k] += e.get("dur", 0) / runs
                count[k] += 1 / runs
        total = sum(by.values()) or 1
        out.append(f"\n#### {variant}: {run_us / 1000:.2f} ms per run, node time {total / 1000:.2f} ms\n")
        out.append("| operator | provider | nodes | ms/run | share |\n|---|---|---|---|---|")
        for (op, prov), us in by.most_common(15):
            out.append(f"| {op} | {prov} | {count[(op, prov)]:.0f} | {us / 1000:.3f} | {100 * us / total:.1f}% |")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_json")
    ap.add_argument("out_md")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--profiles")
    ap.add_argument("--notes")
    a = ap.parse_args()
    rows = []
    for p in a.inputs:
        try:
            with open(p) as f:
                rows += json.load(f)
        except (OSError, ValueError) as e:
            rows.append({"variant": os.path.basename(p), "mode": "-", "error": f"unreadable: {e}"})
    with open(a.out_json, "w") as f:
        json.dump(rows, f, indent=2)
    md = table(rows)
    if a.profiles:
        md += "\n### ONNX Runtime profile (per run)\n" + profiles(a.profiles)
    if a.notes and os.path.exists(a.notes):
        md += "\n### Run log\n```\n" + open(a.notes).read() + "```\n"
    with open(a.out_md, "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
