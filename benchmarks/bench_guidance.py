"""Sampling-settings sweep for every sampler of a main-job run: guidance scale x schedule x temperature x top-k x top-p,
per model, chosen on validation.

Loads the generators of a `sar_ref_demo` run folder (VAR, and the AR, MAR-like and SAR-TS FMTs that are there), draws
class-conditional samples (per class, class-major) for each setting with the KV-cached sampler, and prints FD,
classifier accuracy, precision and recall against a reference of real images in the run's judge's features. The
reference is the **validation** one by default: the held-out training images (`real_features(split='validation')`),
never the test split that the main job's table reports on. The last lines name, per family, the setting with the lowest
validation FD (for the FMTs: the lowest mean FD over their rows, one setting for all three), which is how a recipe's
`guidance` and `filters` (`sar_ref.study.BUDGETS`) are chosen.

    python benchmarks/bench_guidance.py --run runs/demo [--seeds 0 1] [--device cuda] [--threads 2]
    python benchmarks/bench_guidance.py --run runs/demo --reference test      # the old protocol, for comparison
    python benchmarks/bench_guidance.py --run runs/demo --schedules linear --fmt-cfgs 4 6 8 --out sweep.jsonl   # rows appended
    python benchmarks/bench_guidance.py --run runs/demo --schedules linear --var-cfgs 3 --fmt-cfgs 5 --temperatures 0.9 1 --top-ps 0.95 1
    python benchmarks/bench_guidance.py --select sweep.jsonl      # the rule below over every row of one or more sweeps
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from sar_ref.evaluation import REFERENCE_SPLITS, evaluate_samples, real_features
from sar_ref.study import class_major_labels, load_generator, sample_images
from sar_ref.training import load_model

ROWS = (('var.pt', None), ('fmt_ar.pt', 'ar'), ('fmt_mar.pt', 'cosine:8'), ('fmt_sar_ts.pt', 'cosine:8'), ('fmt_sar_ts.pt', 'cosine:16'))
CFGS = {'var': [1.0, 1.5, 2.0, 3.0, 4.0], 'fmt': [1.5, 2.0, 2.5, 3.0, 4.0]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run', default='runs/demo', help='a sar_ref_demo run folder with its generators and classifier.pt')
    ap.add_argument('--reference', default='validation', choices=REFERENCE_SPLITS, help='the real images FD is measured against')
    ap.add_argument('--var-cfgs', nargs='+', type=float, default=CFGS['var'])
    ap.add_argument('--fmt-cfgs', nargs='+', type=float, default=CFGS['fmt'])
    ap.add_argument('--schedules', nargs='+', default=['linear', 'constant'], choices=['linear', 'constant'])
    ap.add_argument('--temperatures', nargs='+', type=float, default=[1.0], help='softmax temperatures (> 0)')
    ap.add_argument('--top-ks', nargs='+', type=int, default=[0], help='top-k filters (0: off)')
    ap.add_argument('--top-ps', nargs='+', type=float, default=[1.0], help='top-p filters (1: off)')
    ap.add_argument('--models', nargs='+', default=[c[:-3] for c, _ in ROWS], help='checkpoints to sweep (default: all of them)')
    ap.add_argument('--seeds', nargs='+', type=int, default=[0])
    ap.add_argument('--per-class', type=int, default=100)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    ap.add_argument('--out', default=None, help='also append each cell (JSON lines) to this file')
    ap.add_argument('--select', default=None, help='no sampling: apply the selection rule to the cells of this JSON-lines file')
    args = ap.parse_args(argv)
    if args.select:
        cells = {}                                    # a cell measured twice (a sweep re-run): its last line counts
        for line in open(args.select):
            if line.strip():
                c = json.loads(line)
                c = {**DRAW, **c}                        # sweeps written before the filters were swept drew unfiltered
                cells[(c['run'], c['ckpt'], c['intervals'], setting(c), tuple(c['seeds']))] = c
        cells = list(cells.values())
        refs = {c['reference'] for c in cells}
        if len(refs) != 1: sys.exit(f"--select {args.select!r}: cells of several references {sorted(refs)}; expected one")
        fds = {}
        for c in cells: fds.setdefault((c['kind'], setting(c)), []).append(c['fd'])
        return select(fds, refs.pop())
    if args.threads: torch.set_num_threads(args.threads)
    run = Path(args.run)
    clf = load_model(run / 'classifier.pt', kind='classifier', device=args.device)
    real = real_features(classifier=clf, split=args.reference)
    labels = class_major_labels(args.per_class, clf.cfg.n_classes)
    print(f"run {run}, reference: {args.reference} ({len(real)} images), {len(labels)} samples per cell, "
          f"{torch.get_num_threads()} thread(s), {args.device}")
    print(f"{'model':14s} {'intervals':10s} {'schedule':9s} {'cfg':>4s} {'temp':>5s} {'top_k':>5s} {'top_p':>5s} "
          f"{'FD':>7s} {'acc':>6s} {'prec':>6s} {'rec':>6s} {'s':>5s}")
    fds = {}                                          # (family, setting) -> FD of each row, averaged over seeds
    for ckpt, intervals in ROWS:
        if ckpt[:-3] not in args.models or not (run / ckpt).is_file(): continue
        model = load_generator(run / ckpt, device=args.device)
        cfgs = args.var_cfgs if model.kind == 'var' else args.fmt_cfgs
        for schedule, cfg, temperature, top_k, top_p in itertools.product(args.schedules, cfgs, args.temperatures, args.top_ks,
                                                                          args.top_ps):
            t0, cells, draw = time.perf_counter(), [], dict(temperature=temperature, top_k=top_k, top_p=top_p)
            for seed in args.seeds:
                images, _ = sample_images(model, labels, intervals=intervals, cfg=cfg, cfg_schedule=schedule, seed=seed,
                                          progress=False, **draw)
                cells.append(evaluate_samples(images, labels, classifier=clf, real_feats=real))
            mean = {k: statistics.mean(c[k] for c in cells) for k in ('fd', 'accuracy', 'precision', 'recall')}
            cell = {'run': str(run), 'ckpt': ckpt, 'intervals': intervals, 'kind': model.kind, 'schedule': schedule, 'cfg': cfg,
                    **draw, 'seeds': args.seeds, 'reference': args.reference, **mean}
            fds.setdefault((model.kind, setting(cell)), []).append(mean['fd'])
            if args.out:
                with open(args.out, 'a') as f: f.write(json.dumps(cell) + '\n')
            print(f"{ckpt[:-3]:14s} {intervals or 'scales':10s} {schedule:9s} {cfg:4.1f} {temperature:5.2f} {top_k:5d} {top_p:5.2f} "
                  f"{mean['fd']:7.2f} {mean['accuracy']:6.3f} {mean['precision']:6.3f} {mean['recall']:6.3f} "
                  f"{time.perf_counter() - t0:5.0f}", flush=True)
    return select(fds, args.reference)


DRAW = {'temperature': 1.0, 'top_k': 0, 'top_p': 1.0}     # an unfiltered draw


def setting(cell: dict) -> tuple:
    "A cell's sampling setting: (schedule, cfg, temperature, top_k, top_p)."
    return (cell['schedule'], cell['cfg'], cell['temperature'], cell['top_k'], cell['top_p'])


def select(fds: dict, reference: str) -> dict:
    "Per family, the setting with the lowest FD averaged over its rows (only settings measured on every row), ties to the first."
    best = {}
    for kind in ('var', 'fmt'):
        n_rows = max((len(v) for (k, _), v in fds.items() if k == kind), default=0)
        scores = {s: statistics.mean(v) for (k, s), v in fds.items() if k == kind and len(v) == n_rows}
        if scores:
            ranked = sorted(scores.items(), key=lambda kv: kv[1])
            for (schedule, cfg, t, k, p), fd in ranked:
                print(f"{kind} cfg {cfg} {schedule}, temperature {t}, top_k {k}, top_p {p}: mean FD {fd:.2f} over {n_rows} rows")
            (schedule, cfg, t, k, p), fd = ranked[0]
            best[kind] = {'guidance': (cfg, schedule), 'filters': {'temperature': t, 'top_k': k, 'top_p': p}}
            print(f"best {kind} setting on the {reference} reference: cfg {cfg} {schedule}, temperature {t}, top_k {k}, "
                  f"top_p {p} (mean FD {fd:.2f} over its {n_rows} rows)")
    return best


if __name__ == '__main__':
    main()
