"""The default samplers on the CPU, this tree against an earlier commit: seconds per call side by side in one run.

Both versions of the library run in their own processes, alternately (the order flips every round), on the same
random-weight models of the Fashion-MNIST size (VAR over the multi-scale tokenizer's six scales, batch 50 with
guidance; the SAR-TS FMT with 16 sets), with default arguments (fp32, eager, KV cache). Each process reports the median
of its calls and a digest of the tokens it drew, so the table also says whether the two versions draw the same tokens.

    python benchmarks/bench_sampler_cpu.py --baseline 2559109 [--rounds 5] [--calls 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import hashlib, json, statistics, sys, time
import torch
torch.set_num_threads(1)
from sar_ref.fmt import FMT, FMTConfig, generate as fmt_generate
from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE
from sar_ref.var import VAR, VARConfig, generate as var_generate
from sar_ref.vqvae import VQVAE, VQVAEConfig
calls = int(sys.argv[1])
torch.manual_seed(0)
msvq = MultiScaleVQVAE(MSVQConfig()).eval()
var = VAR(VARConfig.fashion(vocab_size=msvq.cfg.vocab_size, z_dim=msvq.cfg.z_dim, patch_nums=msvq.cfg.patch_nums), msvq).eval()
vq = VQVAE(VQVAEConfig()).eval()
fmt = FMT(FMTConfig.fashion('SAR-TS', vocab_size=vq.cfg.vocab_size, h=vq.cfg.latent_size, w=vq.cfg.latent_size), vq).eval()
labels = torch.arange(50) % 10
out = {}
for name, call in (('VAR', lambda g: torch.cat([t.flatten(1) for t in var_generate(var, labels, generator=g)[0]], 1)),
                   ('FMT SAR-TS', lambda g: fmt_generate(fmt, labels, generator=g)[0])):
    times, digest = [], hashlib.sha256()
    for i in range(calls + 1):
        t0 = time.perf_counter(); tokens = call(torch.Generator().manual_seed(i)); dt = time.perf_counter() - t0
        if i: times.append(dt)                       # the first call warms up
        digest.update(tokens.numpy().tobytes())
    out[name] = {'median_s': statistics.median(times), 'tokens': digest.hexdigest()[:12]}
print(json.dumps(out))
'''


def run(path: Path, calls: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(path))
    res = subprocess.run([sys.executable, '-c', CHILD, str(calls)], env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--baseline', required=True, help='the commit to compare with (e.g. the one before a change)')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--calls', type=int, default=5, help='timed calls per process (after one warm-up call)')
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / 'baseline'
        base.mkdir()
        archive = subprocess.run(['git', '-C', str(ROOT), 'archive', args.baseline, 'sar_ref'], capture_output=True, check=True)
        subprocess.run(['tar', '-x', '-C', str(base)], input=archive.stdout, check=True)
        versions = {f'baseline {args.baseline}': base, 'this tree': ROOT}
        results = {v: [] for v in versions}
        for r in range(args.rounds):
            for v in (list(versions) if r % 2 == 0 else list(versions)[::-1]):
                results[v].append(run(versions[v], args.calls))
                print(f'round {r} {v:20s} ' + '  '.join(f"{m} {x['median_s']:.3f} s" for m, x in results[v][-1].items()), flush=True)
    names = list(versions)
    print(f'\n| sampler | {names[0]} (s/call) | {names[1]} (s/call) | ratio | same tokens |\n|---|---:|---:|---:|---|')
    for m in results[names[0]][0]:
        med = [statistics.median(run_[m]['median_s'] for run_ in results[v]) for v in names]
        same = results[names[0]][0][m]['tokens'] == results[names[1]][0][m]['tokens']
        print(f'| {m} | {med[0]:.3f} | {med[1]:.3f} | {med[1] / med[0]:.3f} | {same} |')


if __name__ == '__main__':
    main()
