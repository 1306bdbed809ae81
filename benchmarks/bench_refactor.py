"""Before / after a refactor, side by side in one run: training steps and sampling calls of two checkouts of sar_ref.

Pass the checkout of the previous version with `--old PATH` (the current one is the repository this script lives in,
or `--new PATH`). Every measurement batch runs in its own subprocess that imports one version only (PYTHONPATH set to
that checkout), with one torch thread and OMP_NUM_THREADS=MKL_NUM_THREADS=1 for both. Rounds alternate which version
goes first (old, new, new, old, ...); the medians over all timed calls of all rounds are reported per version, with
the ratio new / old. On a machine shared with other jobs the absolute times are inflated, the ratios much less.

Models: the Fashion-MNIST sizes with random weights (the cost does not depend on them), the same in both versions
(`shared_weights`: drawn per parameter name, mapped across the two layouts, e.g. VAR's fused qkv = new q + kv):
  VAR      VARConfig.fashion() on a MultiScaleVQVAE(MSVQConfig()) tokenizer (width 128, depth 4, 130 tokens in 6 scales)
  FMT      FMTConfig.fashion('SAR-TS') and FMTConfig.fashion('AR') (width 96, 2+2 layers, 64 tokens), no tokenizer
Measured:
  (a) one training step: zero_grad, `compute_loss` on random tokens and labels (forward + loss), backward, AdamW step
      (torch.optim.AdamW over the trainable parameters, lr 1e-4): VAR batch 32, FMT SAR-TS batch 64
  (b) one cached sampling call, batch 16 (x2 rows for guidance): VAR cfg 1.5 (linear ramp), 6 scales + image
      decoding; FMT SAR-TS random order, cosine:16 (16 steps); FMT AR raster order, 64 steps; FMT cfg 2.5 constant.
      Old API: sar_ref.kv_cache.var_generate_cached / fmt_generate_cached; new: the one sampler with kv_cache=True.
      Caches are allocated inside every call in both.
  (c) the plain (uncached) sampling call for the same: old sar_ref.var.generate / sar_ref.fmt.generate, new the same
      sampler with kv_cache=False.
Also: lines of sar_ref/*.py (without _modidx.py) in both trees, and whether both versions drew the same tokens with the
same weights and seed (a digest of the first call's tokens of each sampler). `--count-ops` instead counts the ATen
operator calls and FLOPs of one call of each measurement in both versions: the work done, independent of the load.

    python benchmarks/bench_refactor.py --old <checkout of the previous commit>     # 5.5 min on a busy 2-core CPU
    python benchmarks/bench_refactor.py --old <checkout> --quick                     # smoke test, 1-2 minutes
    python benchmarks/bench_refactor.py --old <checkout> --count-ops                 # operator and FLOP counts, 1 minute
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# name -> (what, timed calls per round, untimed calls first in every process)
MEASUREMENTS = {
    'train-var':     ('training step, VAR, batch 32', 3, 1),
    'train-sar':     ('training step, FMT SAR-TS, batch 64', 3, 1),
    'cached-var':    ('cached sampling, VAR 6 scales, batch 16', 2, 1),
    'cached-sar16':  ('cached sampling, FMT SAR-TS 16 steps, batch 16', 2, 1),
    'cached-ar64':   ('cached sampling, FMT AR 64 steps, batch 16', 2, 1),
    'plain-var':     ('plain sampling, VAR 6 scales, batch 16', 2, 1),
    'plain-sar16':   ('plain sampling, FMT SAR-TS 16 steps, batch 16', 2, 1),
    'plain-ar64':    ('plain sampling, FMT AR 64 steps, batch 16', 1, 0),   # seconds a call: first-call overhead negligible
}
SAMPLE_BATCH, VAR_BATCH, FMT_BATCH = 16, 32, 64
VAR_CFG, FMT_CFG = 1.5, 2.5
FMT_SAMPLING = {'SAR-TS': ('random', 'cosine:16'), 'AR': ('raster', 'ar')}


# ----------------------------------------------------------------------------------------------------- the worker
def worker(names: list[str], timed_calls: int | None, warmup: int | None, seed: int, count_ops: bool = False) -> dict:
    "Runs in a subprocess that imports one version of sar_ref: {name: {'wall': [...], 'cpu': [...], 'digest': str}}."
    import torch
    torch.set_num_threads(1)
    import sar_ref
    from sar_ref.fmt import FMT, FMTConfig
    from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE
    from sar_ref.var import VAR, VARConfig
    old_api = _has_module('sar_ref.kv_cache')
    if old_api:
        from sar_ref import fmt as F_, var as V_
        from sar_ref.kv_cache import fmt_generate_cached, var_generate_cached

        def var_sample(model, labels, g, cached):
            return (var_generate_cached if cached else V_.generate)(model, labels, cfg=VAR_CFG, generator=g)[0]

        def fmt_sample(model, labels, g, cached, order, intervals):
            fn = fmt_generate_cached if cached else F_.generate
            return fn(model, labels, order=order, intervals=intervals, cfg=FMT_CFG, cfg_schedule='constant', generator=g)
    else:
        from sar_ref.fmt import generate as fmt_generate
        from sar_ref.var import generate as var_generate

        def var_sample(model, labels, g, cached):
            return var_generate(model, labels, cfg=VAR_CFG, cfg_schedule='linear', generator=g, kv_cache=cached)[0]

        def fmt_sample(model, labels, g, cached, order, intervals):
            return fmt_generate(model, labels, order=order, intervals=intervals, cfg=FMT_CFG, cfg_schedule='constant',
                                generator=g, kv_cache=cached)[0]

    torch.manual_seed(seed)
    models = {'VAR': VAR(VARConfig.fashion(), MultiScaleVQVAE(MSVQConfig()))}
    for preset in FMT_SAMPLING:
        torch.manual_seed(seed)
        models[preset] = FMT(FMTConfig.fashion(preset))
    for m in models.values(): shared_weights(m, seed, fused_qkv=isinstance(m, VAR))

    def train_step_fn(model, batch: int):
        g = torch.Generator().manual_seed(seed)
        n_tokens = model.L if isinstance(model, VAR) else model.cfg.h * model.cfg.w
        data = (torch.randint(0, model.cfg.vocab_size, (batch, n_tokens), generator=g),
                torch.randint(0, model.cfg.n_classes, (batch,), generator=g))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        def step():
            model.train()
            opt.zero_grad(set_to_none=True)
            loss, _ = model.compute_loss(data)
            loss.backward()
            opt.step()
            return loss.detach()
        return step

    def sample_fn(key: str, cached: bool):
        labels = torch.arange(SAMPLE_BATCH) % 10
        model = models[key].eval()

        def call():
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                if key == 'VAR': return torch.cat([t.flatten(1) for t in var_sample(model, labels, g, cached)], 1)
                return fmt_sample(model, labels, g, cached, *FMT_SAMPLING[key]).flatten(1)
        return call

    fns = {}
    for name in names:
        if name.startswith('train'):
            fns[name] = train_step_fn(models['VAR'], VAR_BATCH) if name.endswith('var') else train_step_fn(models['SAR-TS'], FMT_BATCH)
        else:
            key = {'var': 'VAR', 'sar16': 'SAR-TS', 'ar64': 'AR'}[name.split('-')[1]]
            fns[name] = sample_fn(key, name.startswith('cached'))
    out = {'sar_ref': str(Path(sar_ref.__file__).resolve().parent), 'old_api': old_api, 'torch': torch.__version__,
           'threads': torch.get_num_threads(), 'results': {}}
    for name in names:
        _, n_timed, n_warm = MEASUREMENTS[name]
        n_timed = timed_calls or n_timed
        n_warm = n_warm if warmup is None else warmup
        fn, wall, cpu, digest = fns[name], [], [], None
        for i in range(n_warm + n_timed):
            w, c = time.perf_counter(), time.process_time()
            res = fn()
            w, c = time.perf_counter() - w, time.process_time() - c
            if i == 0 and not name.startswith('train'):        # the tokens of the first call, same seed every call
                digest = hashlib.sha1(res.to(torch.int64).numpy().tobytes()).hexdigest()[:12]
            if i >= n_warm: wall.append(w); cpu.append(c)
        out['results'][name] = {'wall': wall, 'cpu': cpu, 'digest': digest}
        if count_ops: out['results'][name].update(count_calls(fn))
    return out


def count_calls(fn) -> dict:
    "ATen operator calls and matmul-type FLOPs (torch.utils.flop_counter) of one call of fn: machine-independent work."
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class Count(TorchDispatchMode):
        n = 0
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    flops = FlopCounterMode(display=False)
    with flops, Count(): fn()
    return {'aten_ops': Count.n, 'flops': flops.get_total_flops()}


def canonical_name(name: str, fused_qkv: bool) -> str:
    "A parameter's name in a layout both versions map to: MLPs as mlp.fc1 / mlp.fc2, split q and kv as one fused qkv."
    name = name.replace('.ffn.', '.mlp.').replace('.mlp.0.', '.mlp.fc1.').replace('.mlp.2.', '.mlp.fc2.')
    return re.sub(r'\.(attn|self_attn|cross_attn)\.(q|kv)\.', r'.\1.qkv.', name)   # a split q / kv as one qkv


def shared_weights(model, seed: int, fused_qkv: bool):
    """Overwrite the generator's parameters (not its tokenizer's) with random values drawn per canonical name, so that
    both versions hold the same weights whatever their layout (a split q / kv gets the rows of the fused qkv, q first).
    Unlike the models' own initialisation (AdaLN gains of 1e-5, a 0.02-scaled head), every block shapes the logits, so
    equal tokens from equal seeds mean equal computations."""
    import zlib
    import torch
    params = {n: p for n, p in model.named_parameters() if not n.startswith('tokenizer.') and 'log_temperature' not in n}
    groups = {}
    for n in params: groups.setdefault(canonical_name(n, fused_qkv), []).append(n)
    with torch.no_grad():
        for cn, names in groups.items():
            names.sort(key=lambda n: '.attn.kv.' in n)                        # q rows first, then kv
            shape = (sum(params[n].shape[0] for n in names), *params[names[0]].shape[1:])
            t = torch.randn(shape, generator=torch.Generator().manual_seed(seed + zlib.crc32(cn.encode())))
            if len(shape) >= 2: t = t * shape[-1] ** -0.5                     # matrices, embeddings: unit-variance outputs
            elif cn.endswith('weight'): t = 1 + 0.1 * t                      # norm gains
            else: t = 0.02 * t                                                # biases
            for n, part in zip(names, t.split([params[n].shape[0] for n in names])): params[n].copy_(part)


def _has_module(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


# ----------------------------------------------------------------------------------------------------- the driver
def run_worker(tree: Path, names: list[str], timed_calls: int | None, warmup: int | None, seed: int,
               count_ops: bool = False) -> dict:
    "One measurement batch in a fresh interpreter importing sar_ref from `tree` only."
    env = {**os.environ, 'PYTHONPATH': str(tree), 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    cmd = [sys.executable, str(Path(__file__).resolve()), '--worker', '--names', *names, '--seed', str(seed)]
    if timed_calls: cmd += ['--timed-calls', str(timed_calls)]
    if warmup is not None: cmd += ['--warmup', str(warmup)]
    if count_ops: cmd += ['--count-ops']
    p = subprocess.run(cmd, env=env, cwd=str(tree), capture_output=True, text=True)
    if p.returncode != 0: sys.exit(f"worker for {tree} failed:\n{p.stderr[-4000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if Path(out['sar_ref']) != (tree / 'sar_ref').resolve():
        sys.exit(f"worker for {tree} imported sar_ref from {out['sar_ref']}: PYTHONPATH did not take precedence")
    return out


def lines_of_code(tree: Path) -> dict[str, tuple[int, int]]:
    "{file: (lines, non-blank lines)} of sar_ref/*.py without _modidx.py."
    out = {}
    for f in sorted((tree / 'sar_ref').glob('*.py')):
        if f.name == '_modidx.py': continue
        text = f.read_text().splitlines()
        out[f.name] = (len(text), sum(1 for line in text if line.strip()))
    return out


def print_loc(old: Path, new: Path) -> dict:
    lo, ln = lines_of_code(old), lines_of_code(new)
    print(f"\nlines of sar_ref/*.py (without _modidx.py): all lines (non-blank)")
    print(f"{'file':16s} {'old':>12s} {'new':>12s} {'new - old':>10s}")
    for f in sorted(set(lo) | set(ln)):
        a, b = lo.get(f, (0, 0)), ln.get(f, (0, 0))
        print(f"{f:16s} {a[0]:6d} ({a[1]:4d}) {b[0]:6d} ({b[1]:4d}) {b[0] - a[0]:+10d}")
    ta, tb = [sum(v[i] for v in lo.values()) for i in (0, 1)], [sum(v[i] for v in ln.values()) for i in (0, 1)]
    print(f"{'total':16s} {ta[0]:6d} ({ta[1]:4d}) {tb[0]:6d} ({tb[1]:4d}) {tb[0] - ta[0]:+10d}")
    return {'old': lo, 'new': ln}


def count_ops_table(trees: dict, names: list[str], seed: int) -> list[dict]:
    "One untimed call of each measurement per version under an operator counter: the work each version does."
    outs = {v: run_worker(t, names, 1, 1, seed, count_ops=True)['results'] for v, t in trees.items()}
    head = f"{'measurement':48s} {'ATen ops old':>12s} {'new':>8s} {'new/old':>7s}   {'GFLOP old':>9s} {'new':>8s} {'new/old':>7s}"
    print(head); print('-' * len(head))
    rows = []
    for n in names:
        o, w = outs['old'][n], outs['new'][n]
        rows.append(dict(name=n, ops_old=o['aten_ops'], ops_new=w['aten_ops'], flops_old=o['flops'], flops_new=w['flops']))
        print(f"{MEASUREMENTS[n][0]:48s} {o['aten_ops']:12d} {w['aten_ops']:8d} {w['aten_ops'] / o['aten_ops']:7.3f}   "
              f"{o['flops'] / 1e9:9.3f} {w['flops'] / 1e9:8.3f} {w['flops'] / max(o['flops'], 1):7.3f}")
    print('ATen ops: operator calls seen by a TorchDispatchMode (forward and backward); GFLOP: torch.utils.flop_counter '
          '(matmuls, convolutions, attention)')
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--old', help='checkout of the previous version (a folder holding sar_ref/)')
    ap.add_argument('--new', default=str(REPO), help='checkout of the current version (default: this repository)')
    ap.add_argument('--rounds', type=int, default=4, help='subprocess pairs per measurement batch (order alternates)')
    ap.add_argument('--timed-calls', type=int, default=None, help='timed calls per measurement and round (default: per measurement)')
    ap.add_argument('--warmup', type=int, default=None, help='untimed calls per measurement in every subprocess (default: per measurement)')
    ap.add_argument('--only', nargs='+', choices=list(MEASUREMENTS), default=None, help='a subset of the measurements')
    ap.add_argument('--quick', action='store_true', help='smoke test: 2 rounds, 1 timed call each, no warm-up calls')
    ap.add_argument('--count-ops', action='store_true',
                    help='instead of timing: ATen operator calls and matmul FLOPs of one call of each, old and new')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', default=None, help='also write all timings to this file')
    ap.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--names', nargs='+', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.names, args.timed_calls, args.warmup, args.seed, args.count_ops)))
        return
    if not args.old: ap.error('--old PATH is required (a checkout of the previous version)')
    trees = {'old': Path(args.old).resolve(), 'new': Path(args.new).resolve()}
    for k, t in trees.items():
        if not (t / 'sar_ref' / '__init__.py').is_file(): ap.error(f"--{k} {str(t)!r}: no sar_ref/__init__.py there")
    rounds, timed_calls, warmup = (2, 1, 0) if args.quick else (args.rounds, args.timed_calls, args.warmup)
    names = args.only or list(MEASUREMENTS)
    if args.count_ops: return count_ops_table(trees, names, args.seed)
    # measurement batches: the training steps, the cached samplers, the plain samplers (one subprocess each)
    batches = [[n for n in names if n.startswith(p)] for p in ('train', 'cached', 'plain')]
    batches = [b for b in batches if b]

    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    times = {v: {n: {'wall': [], 'cpu': []} for n in names} for v in trees}
    digests = {v: {} for v in trees}
    info = {}
    for r in range(rounds):
        for batch in batches:
            order = ('old', 'new') if r % 2 == 0 else ('new', 'old')
            for v in order:
                out = run_worker(trees[v], batch, timed_calls, warmup, args.seed)
                info[v] = {k: out[k] for k in ('sar_ref', 'old_api', 'torch', 'threads')}
                for n, res in out['results'].items():
                    times[v][n]['wall'] += res['wall']; times[v][n]['cpu'] += res['cpu']
                    if res['digest']: digests[v][n] = res['digest']
        print(f"round {r + 1}/{rounds} done, {time.perf_counter() - t0:.0f} s", flush=True)

    for v in trees:
        print(f"{v}: sar_ref from {info[v]['sar_ref']} ({'sar_ref.kv_cache present' if info[v]['old_api'] else 'no sar_ref.kv_cache'}), "
              f"torch {info[v]['torch']}, {info[v]['threads']} thread")
    print(f"{rounds} rounds (order alternating), OMP_NUM_THREADS=1, medians over all timed calls; ratio = new / old")
    rows = []
    head = (f"{'measurement':48s} {'n':>3s} {'old ms':>8s} {'new ms':>8s} {'new/old':>7s}   {'cpu old':>8s} {'cpu new':>8s} "
            f"{'new/old':>7s}  same tokens")
    print('\n' + head); print('-' * len(head))
    for n in names:
        mo, mn = (statistics.median(times[v][n]['wall']) for v in ('old', 'new'))
        co, cn = (statistics.median(times[v][n]['cpu']) for v in ('old', 'new'))
        same = '-' if n.startswith('train') else ('yes' if digests['old'].get(n) == digests['new'].get(n) else 'no')
        rows.append(dict(name=n, what=MEASUREMENTS[n][0], n=len(times['new'][n]['wall']), old_ms=mo * 1e3, new_ms=mn * 1e3,
                         ratio=mn / mo, cpu_old_ms=co * 1e3, cpu_new_ms=cn * 1e3, cpu_ratio=cn / co, same_tokens=same))
        print(f"{MEASUREMENTS[n][0]:48s} {len(times['new'][n]['wall']):3d} {mo * 1e3:8.1f} {mn * 1e3:8.1f} {mn / mo:7.3f}   "
              f"{co * 1e3:8.1f} {cn * 1e3:8.1f} {cn / co:7.3f}  {same}", flush=True)
    print("ms: wall-clock medians; cpu: process CPU time medians (one thread: less sensitive to other jobs' load)")
    loc = print_loc(trees['old'], trees['new'])
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average (1 min) {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(rows=rows, times=times, digests=digests, info=info, loc=loc, rounds=rounds), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
