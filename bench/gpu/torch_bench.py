#!/usr/bin/env python3
"""PyTorch reference for bench/gpu: a MiniLM-L6-shaped BertModel (hidden 384, 6 layers, 12 heads,
intermediate 1536, vocabulary 30,522) with random weights, eager mode with transformers' default
(SDPA) attention, in fp32 and fp16, timed with the protocol of the Go benchmark's "sched" mode:
token ids already on the host, masked mean pooling on the device, the pooled [batch, 384] copied
back to the host; warm-up calls, then the median of timed calls (torch.cuda.synchronize via
.cpu()). Writes a JSON list shaped like the Go program's results."""
import argparse
import json
import statistics
import sys
import time

import torch
from transformers import BertConfig, BertModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="1x16,64x16,256x128,512x128")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", default="torch-bench.json")
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512)
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, attention {cfg._attn_implementation if hasattr(cfg, '_attn_implementation') else 'default'}",
          file=sys.stderr)
    results = []
    for dtype, name in ((torch.float32, "torch-fp32"), (torch.float16, "torch-fp16")):
        model = BertModel(cfg, add_pooling_layer=False).eval().to(dev, dtype)
        for shape in a.shapes.split(","):
            b, s = (int(x) for x in shape.split("x"))
            ids = torch.randint(1000, 29000, (b, s))
            ids[:, 0], ids[:, -1] = 101, 102
            mask = torch.ones(b, s, dtype=torch.long)

            def call():
                with torch.inference_mode():
                    i, m = ids.to(dev, non_blocking=True), mask.to(dev, non_blocking=True)
                    h = model(input_ids=i, attention_mask=m).last_hidden_state
                    mf = m.unsqueeze(-1).to(h.dtype)
                    pooled = (h * mf).sum(1) / mf.sum(1).clamp(min=1e-9)
                    return pooled.float().cpu()

            for _ in range(a.warmup):
                call()
            lat = []
            for _ in range(a.iters):
                t = time.perf_counter()
                call()
                lat.append(time.perf_counter() - t)
            lat.sort()
            p50 = statistics.median(lat)
            r = {"variant": name, "mode": "model", "shape": shape, "clients": 1, "calls": a.iters,
                 "p50_ms": round(p50 * 1000, 3), "p90_ms": round(lat[len(lat) * 9 // 10] * 1000, 3),
                 "seq_per_s": b / p50}
            print(json.dumps(r), flush=True)
            results.append(r)
        del model
        torch.cuda.empty_cache()
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
