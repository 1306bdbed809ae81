"""Cached sampling side by side: sar_ref's KV-cached VAR sampler against the official VAR code's autoregressive_infer_cfg.

The official sampler (github FoundationVision/VAR, `VAR.autoregressive_infer_cfg`) keeps its own KV cache (grown with
torch.cat at every scale). This script reuses `benchmarks/bench_var_official.py` to import the official code from the
folder given by `--official PATH` (or SAR_REF_OFFICIAL_VAR) and to build the same configuration for both (depth 6,
width 384, 6 heads, patch_nums (1, 2, 3, 4, 6, 8), vocabulary 512, 10 classes, VAR's initialisation, the same decoder
for the images), then times one full sampling call (K = 6 scales, classifier-free guidance, no top-k / top-p, image
decoding included) of three samplers, interleaved (the order rotates every round), medians over repeats:
ours plain and ours cached (the one sampler, `sar_ref.var.generate` with `kv_cache=False` / a reused
`kv_cache=model.make_cache()`), official.

    python benchmarks/bench_kv_cache_official.py --official /path/to/VAR [--device cuda] [--batch 16] [--repeats 10]
"""
from __future__ import annotations

import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_var_official import build, parse_args, timed   # noqa: E402  (the official-code import and the shared configuration)

from sar_ref.var import generate  # noqa: E402


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv)
    torch.set_grad_enabled(False)
    device = torch.device(args.device)
    tok, ours, vae, theirs = build(args, device)
    ours.eval(); theirs.eval()
    labels = (torch.arange(args.batch) % 10).to(device)
    cache = ours.make_cache()                                   # reused by every cached call

    samplers = {
        'ours plain': lambda: generate(ours, labels, cfg=args.cfg, generator=torch.Generator(device).manual_seed(0), kv_cache=False),
        'ours cached': lambda: generate(ours, labels, cfg=args.cfg, generator=torch.Generator(device).manual_seed(0), kv_cache=cache),
        'official': lambda: theirs.autoregressive_infer_cfg(args.batch, labels, g_seed=0, cfg=args.cfg, top_k=0, top_p=0.0),
    }
    names = list(samplers)
    times = {n: [] for n in names}
    for r in range(args.warmup + args.repeats):
        for n in names[r % 3:] + names[:r % 3]:                  # rotate who goes first
            t = timed(samplers[n], device)
            if r >= args.warmup: times[n].append(t)

    print(f'device {device}, {torch.get_num_threads()} thread(s), batch {args.batch} (x2 for cfg {args.cfg}), '
          f'{args.repeats} repeats after {args.warmup} warm-up rounds; one call = 6 scales + decoding')
    for c, clock in enumerate(('wall', 'cpu')):
        med = {n: statistics.median(t[c] for t in times[n]) for n in names}
        print(f"{clock:4s} median ms: " + '   '.join(f"{n} {med[n] * 1e3:8.1f}" for n in names)
              + f"   | cached/official {med['ours cached'] / med['official']:.3f}"
              f"   plain/official {med['ours plain'] / med['official']:.3f}"
              f"   cached/plain {med['ours cached'] / med['ours plain']:.3f}")
    print('cpu = process CPU time (all threads); the ratios are what to read on a shared machine.')


if __name__ == '__main__':
    main()
