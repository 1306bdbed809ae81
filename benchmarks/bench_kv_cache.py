"""KV-cached against plain sampling (each family's one sampler, `sar_ref.fmt.generate` / `sar_ref.var.generate`, with
`kv_cache=True` against `kv_cache=False`): wall time, speed-up curve, peak memory.

Models with random weights, since the cost does not depend on the weights. `--size fashion` (default): the Fashion-MNIST
presets (FMTConfig.fashion, N = 64 tokens, V = 256; VARConfig.fashion, patch_nums (1, 2, 3, 4, 6, 8), V = 256, with a
default MultiScaleVQVAE). `--size large`: the sizes where a KV cache matters on a GPU: 16x16 tokens and V = 4096, an
FMT of width 768 with 6+6 layers (about 100M parameters) and VAR d16 with the ImageNet-256 scales (310M parameters). Classifier-free guidance on (FMT cfg 2.0,
constant; VAR cfg 1.5, linear ramp, the sampler's default), so every batch is doubled. The FMTs here carry no
tokenizer, so their sampler returns tokens only; the VAR sampler also decodes the images (plain and cached alike). Each configuration runs plain and cached interleaved (alternating which goes first), after
`--warmup` untimed rounds, and reports medians over `--repeats`; the plain and cached tokens are compared too.

Peak memory of one call, with caches allocated inside the call (fresh, not reused): on CUDA,
torch.cuda.max_memory_allocated() during the call minus the memory allocated before it; on the CPU, the torch profiler's
memory events (profile_memory=True): the peak of the running sum of tensor allocations minus frees during the call (the
CPU analogue of max_memory_allocated; Python objects and allocator caching are not counted). The size of the
preallocated KV buffers is printed as well.

    python benchmarks/bench_kv_cache.py [--device cuda] [--size large] [--batches 1 64] [--repeats 3] [--threads 1]
                                        [--curve-steps 4 8 16 32 64] [--png PATH] [--no-memory]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from sar_ref.fmt import FMT, FMTConfig, generate as fmt_generate
from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE
from sar_ref.partitions import make_partition
from sar_ref.var import VAR, VARConfig, generate as var_generate

FMT_CFG, VAR_CFG = 2.0, 1.5
CONFIGS = {                                 # name -> (model kind, order, intervals)
    'FMT AR (1 token/step)': ('fmt', 'raster', 'ar'),
    'FMT SAR-TS (16 steps)': ('fmt', 'random', 'cosine:16'),
    'FMT SAR-TS (8 steps)': ('fmt', 'random', 'cosine:8'),
    'VAR (all scales)': ('var', None, None),
}


SIZE = 'fashion'                            # set by --size
LARGE_PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)   # VAR's ImageNet-256 scales


def build(kind: str, device):
    "A model of the --size preset with random weights, in eval mode."
    torch.manual_seed(0)
    if SIZE == 'large':     # 16x16 tokens, V = 4096: FMT ~100M (dim 768, 6+6 layers), VAR d16 (310M with 1000 classes)
        if kind == 'fmt':
            return FMT(FMTConfig.fashion('SAR-TS', width=768, enc_depth=6, dec_depth=6, n_heads=12, h=16, w=16,
                                         vocab_size=4096)).to(device).eval()
        tok = MultiScaleVQVAE(MSVQConfig(image_size=64, vocab_size=4096, patch_nums=LARGE_PATCH_NUMS))
        return VAR(VARConfig.paper(16, vocab_size=4096, n_classes=1000, patch_nums=LARGE_PATCH_NUMS), tok).to(device).eval()
    if kind == 'fmt': return FMT(FMTConfig.fashion('SAR-TS')).to(device).eval()
    return VAR(VARConfig.fashion(), MultiScaleVQVAE(MSVQConfig())).to(device).eval()


def samplers(model, kind: str, order, intervals, batch: int, device, reuse_caches: bool = True):
    "(plain, cached) zero-argument callables drawing the same samples (same labels, partition and seed)."
    labels = (torch.arange(batch) % 10).to(device)
    cache = model.make_cache() if reuse_caches else True            # True: every call allocates its own
    if kind == 'var':
        def plain(): return var_generate(model, labels, cfg=VAR_CFG, generator=torch.Generator(device).manual_seed(0), kv_cache=False)[0]
        def cached(): return var_generate(model, labels, cfg=VAR_CFG, generator=torch.Generator(device).manual_seed(0), kv_cache=cache)[0]
        return plain, cached
    part = make_partition(order, intervals, model.cfg.h, model.cfg.w, batch=batch,
                          generator=torch.Generator(device).manual_seed(0), device=device)
    def plain(): return fmt_generate(model, labels, partition=part, cfg=FMT_CFG, generator=torch.Generator(device).manual_seed(1), kv_cache=False)[0]
    def cached(): return fmt_generate(model, labels, partition=part, cfg=FMT_CFG, generator=torch.Generator(device).manual_seed(1), kv_cache=cache)[0]
    return plain, cached


def timed(fn, device) -> tuple[float, object]:
    "Wall seconds of one call, and its result."
    if device.type == 'cuda': torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == 'cuda': torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def compare(plain, cached, device, warmup: int, repeats: int) -> dict:
    "Interleaved medians of plain and cached wall time, and whether they drew the same tokens."
    times, same = {'plain': [], 'cached': []}, True
    for r in range(warmup + repeats):
        outs = {}
        for name in (('plain', 'cached') if r % 2 == 0 else ('cached', 'plain')):
            t, outs[name] = timed(plain if name == 'plain' else cached, device)
            if r >= warmup: times[name].append(t)
        a, b = outs['plain'], outs['cached']
        same &= all(torch.equal(x, y) for x, y in zip(a, b)) if isinstance(a, list) else torch.equal(a, b)
    p, c = statistics.median(times['plain']), statistics.median(times['cached'])
    return dict(plain_s=p, cached_s=c, cached_over_plain=c / p, speedup=p / c, same_tokens=same)


def peak_memory_mib(fn, device) -> float:
    "Peak tensor memory allocated during one call of fn, above what was allocated before it, in MiB."
    if device.type == 'cuda':
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn(); torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof: fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]'), key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:                                              # nbytes: + for an allocation, - for a free
        current += e.nbytes(); peak = max(peak, current)
    return peak / 2**20


def measure_memory(name: str, batch: int, device) -> dict:
    "Peak memory of one plain and one cached call (fresh caches), after an untimed call of each."
    kind, order, intervals = CONFIGS[name]
    model = build(kind, device)
    plain, cached = samplers(model, kind, order, intervals, batch, device, reuse_caches=False)
    plain(); cached()                                             # one-off lazy initialisation outside the measurement
    return dict(plain=peak_memory_mib(plain, device), cached=peak_memory_mib(cached, device))


def cache_mib(name: str, batch: int, device) -> float:
    "Bytes of the preallocated caches after one batch-`batch` cached call, in MiB."
    kind, order, intervals = CONFIGS[name]
    model = build(kind, device)
    cache = model.make_cache()
    labels = (torch.arange(batch) % 10).to(device)
    if kind == 'var': var_generate(model, labels, cfg=VAR_CFG, kv_cache=cache)
    else: fmt_generate(model, labels, order=order, intervals=intervals, cfg=FMT_CFG, kv_cache=cache)
    return cache.nbytes() / 2**20


def speedup_curve(args, device) -> list[dict]:
    "Speed-up of the cached FMT sampler against the number of sets K (random order, cosine:K), at --curve-batch."
    model = build('fmt', device)
    rows = []
    for k in args.curve_steps:
        plain, cached = samplers(model, 'fmt', 'random', f'cosine:{k}', args.curve_batch, device)
        r = compare(plain, cached, device, args.warmup, args.repeats)
        rows.append(dict(steps=k, **r))
        print(f"  K={k:3d}  plain {r['plain_s'] * 1e3:9.1f} ms  cached {r['cached_s'] * 1e3:8.1f} ms  "
              f"speed-up {r['speedup']:5.1f}x  same tokens {r['same_tokens']}", flush=True)
    return rows


def plot_curve(rows, path: str, batch: int, device):
    "Speed-up against the number of steps, as a PNG."
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r['steps'] for r in rows], [r['speedup'] for r in rows], 'o-')
    ax.set_xscale('log', base=2); ax.set_xticks([r['steps'] for r in rows], [str(r['steps']) for r in rows])
    ax.axhline(1, color='grey', lw=0.8)
    ax.set_xlabel('number of sets K (cosine:K, random order)'); ax.set_ylabel('plain / cached wall time')
    ax.set_title(f'FMT, batch {batch} (x2 for cfg), {device.type}, {torch.get_num_threads()} thread(s)', fontsize=9)
    fig.tight_layout(); fig.savefig(path, dpi=120)
    print(f'wrote {path}')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--size', default='fashion', choices=['fashion', 'large'],
                    help="'fashion': the Fashion-MNIST presets; 'large': 16x16 tokens, V 4096, FMT ~100M, VAR d16")
    ap.add_argument('--batches', nargs='+', type=int, default=[1, 64])
    ap.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument('--repeats', type=int, default=3, help='timed rounds per measurement (median)')
    ap.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    ap.add_argument('--curve-steps', nargs='*', type=int, default=[4, 8, 16, 32, 64])
    ap.add_argument('--curve-batch', type=int, default=64)
    ap.add_argument('--png', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'kv_cache_speedup.png'),
                    help='speed-up curve figure (default: next to this script; "" to skip)')
    ap.add_argument('--no-memory', action='store_true')
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    ap.add_argument('--json', default=None, help='also write all results to this file')
    args = ap.parse_args(argv)
    global SIZE
    SIZE = args.size
    if args.threads: torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    device = torch.device(args.device)

    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"repeats {args.repeats} (median), warmup {args.warmup}, cfg FMT {FMT_CFG} / VAR {VAR_CFG}")
    for kind in sorted({CONFIGS[name][0] for name in args.configs}):
        m = build(kind, device)
        c = m.cfg
        size = (f"width {c.width}, {c.enc_depth}+{c.dec_depth} layers, {c.h * c.w} tokens" if kind == 'fmt' else
                f"width {c.width}, depth {c.depth}, {sum(p * p for p in c.patch_nums)} tokens in {len(c.patch_nums)} scales")
        print(f"{kind.upper()}: {size}, {c.n_heads} heads, vocabulary {c.vocab_size}, "
              f"{sum(p.numel() for n, p in m.named_parameters() if not n.startswith('tokenizer.')):,} parameters")
    results = {'wall': [], 'curve': [], 'memory': []}
    print(f"\n{'sampler':24s} {'batch':>5s} {'plain ms':>10s} {'cached ms':>10s} {'cached/plain':>12s} {'speed-up':>8s} same tokens")
    for name in args.configs:
        kind, order, intervals = CONFIGS[name]
        model = build(kind, device)
        for batch in args.batches:
            r = compare(*samplers(model, kind, order, intervals, batch, device), device, args.warmup, args.repeats)
            results['wall'].append(dict(sampler=name, batch=batch, **r))
            print(f"{name:24s} {batch:5d} {r['plain_s'] * 1e3:10.1f} {r['cached_s'] * 1e3:10.1f} "
                  f"{r['cached_over_plain']:12.3f} {r['speedup']:7.1f}x {r['same_tokens']}", flush=True)

    if args.curve_steps:
        print(f"\nspeed-up against the number of steps (FMT, random order, cosine:K, batch {args.curve_batch})")
        results['curve'] = speedup_curve(args, device)
        if args.png: plot_curve(results['curve'], args.png, args.curve_batch, device)

    if not args.no_memory:
        how = ('torch.cuda.max_memory_allocated during the call minus allocated before' if device.type == 'cuda' else
               'torch profiler memory events: peak of allocations minus frees during the call')
        print(f"\npeak memory of one call ({how}); cache = preallocated KV buffers")
        print(f"{'sampler':24s} {'batch':>5s} {'plain MiB':>10s} {'cached MiB':>10s} {'cache MiB':>9s}")
        for name in args.configs:
            for batch in args.batches:
                m = measure_memory(name, batch, device)
                c = cache_mib(name, batch, device)
                results['memory'].append(dict(sampler=name, batch=batch, plain_mib=m['plain'], cached_mib=m['cached'], cache_mib=c))
                print(f"{name:24s} {batch:5d} {m['plain']:10.1f} {m['cached']:10.1f} {c:9.2f}", flush=True)

    if args.json:
        with open(args.json, 'w') as f: json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
