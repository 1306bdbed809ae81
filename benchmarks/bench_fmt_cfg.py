"""Classifier-free guidance sweep for the Fully Masked Transformer's samplers: scale x schedule, per model.

Loads the AR, MAR-like and SAR-TS checkpoints of a `sar_ref_demo` run folder (default budget), draws 1,000
class-conditional samples (100 per class) for each guidance setting with the KV-cached sampler, and prints FD,
classifier accuracy, precision and recall against the test split (sar_ref.evaluation). This is how
`sar_ref.fmt.FMT_CFG` / `FMT_CFG_SCHEDULE` were chosen; the reference set is the test split, so the chosen setting
is selected on the evaluation data (a strict protocol would hold out a validation split).

    python benchmarks/bench_fmt_cfg.py --run runs/demo [--seeds 0 1] [--device cuda] [--threads 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from sar_ref.study import class_major_labels, load_generator, sample_images
from sar_ref.evaluation import evaluate_samples, load_or_train_classifier, real_features

ROWS = (('fmt_ar.pt', 'ar'), ('fmt_mar.pt', 'cosine:8'), ('fmt_sar_ts.pt', 'cosine:8'), ('fmt_sar_ts.pt', 'cosine:16'))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run', default='runs/demo', help='a sar_ref_demo run folder with fmt_*.pt and classifier.pt')
    ap.add_argument('--cfgs', nargs='+', type=float, default=[2.0, 2.5, 3.0, 4.0, 6.0])
    ap.add_argument('--schedules', nargs='+', default=['linear', 'constant'], choices=['linear', 'constant'])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0])
    ap.add_argument('--per-class', type=int, default=100)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    args = ap.parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    run = Path(args.run)
    clf = load_or_train_classifier(run / 'classifier.pt', device=args.device)
    real = real_features(classifier=clf)
    labels = class_major_labels(args.per_class)
    print(f"{'model':14s} {'intervals':10s} {'schedule':9s} {'cfg':>4s} {'seed':>4s} {'FD':>7s} {'acc':>6s} {'prec':>6s} {'rec':>6s} {'s':>5s}")
    for ckpt, intervals in ROWS:
        model = load_generator(run / ckpt, device=args.device)
        for schedule in args.schedules:
            for cfg in args.cfgs:
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    images, _ = sample_images(model, labels, intervals=intervals, cfg=cfg, cfg_schedule=schedule,
                                              seed=seed, progress=False)
                    r = evaluate_samples(images, labels, classifier=clf, real_feats=real)
                    print(f"{ckpt[:-3]:14s} {intervals:10s} {schedule:9s} {cfg:4.1f} {seed:4d} {r['fd']:7.2f} {r['accuracy']:6.3f} "
                          f"{r['precision']:6.3f} {r['recall']:6.3f} {time.perf_counter() - t0:5.0f}", flush=True)


if __name__ == '__main__':
    main()
