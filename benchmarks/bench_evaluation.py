"""Evaluation figures for scale: the feature classifier, the real-data floor, noise-corrupted images, and timings.

    python benchmarks/bench_evaluation.py                  # uses (or trains once) checkpoint_dir()/classifier.pt
    python benchmarks/bench_evaluation.py --train          # also times a fresh training run (not cached)
    python benchmarks/bench_evaluation.py --device cuda
"""
import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sar_ref.data import checkpoint_dir, load_fashion_mnist
from sar_ref.evaluation import (evaluate_samples, held_out_images, load_or_train_classifier, real_data_floor,
                                real_features, train_classifier)
from sar_ref.training import load_checkpoint


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, repeats: int):
    "Result of the last call and the median wall time over `repeats` calls."
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def row(name, r):
    acc = f"{r['accuracy']:.4f}" if r['accuracy'] is not None else '  -   '
    return f"{name:<34} n={r['n']:>6} n_real={r['n_real']:>6}  FD {r['fd']:9.3f}  precision {r['precision']:.3f}  recall {r['recall']:.3f}  acc {acc}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu', help="device of the classifier ('cpu', 'cuda')")
    ap.add_argument('--train', action='store_true', help='time a fresh training run of the classifier (saved to a temp file)')
    ap.add_argument('--ns', type=int, nargs='+', default=[1000, 10000], help='sample counts for the real-data floor')
    ap.add_argument('--repeats', type=int, default=3, help='timing repeats (median reported)')
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    if args.train:
        path = Path(tempfile.mkdtemp()) / 'classifier.pt'
        t, c = time.perf_counter(), cpu_seconds()
        train_classifier(device=args.device, ckpt_path=path, progress=False)
        print(f"fresh training: {time.perf_counter() - t:.1f} s wall, {cpu_seconds() - c:.1f} s CPU (incl. test-accuracy pass)")
    else: path = checkpoint_dir() / 'classifier.pt'
    clf = load_or_train_classifier(path, device=args.device)
    info = load_checkpoint(path)['extra']
    print(f"classifier {path.name}: {sum(p.numel() for p in clf.parameters()):,} parameters, {info['steps']} steps x "
          f"{info['batch_size']} images, trained in {info['train_seconds']:.1f} s, test accuracy {info['test_accuracy']:.4f}")

    ref, t_ref = timed(lambda: real_features(None, clf), args.repeats)
    print(f"reference features of the 10,000 test images: {t_ref:.2f} s (median of {args.repeats})")

    print('\nreal-data floor (held-out training images evaluated as samples):')
    floors = {}
    for n in args.ns:
        floors[n], t = timed(lambda: real_data_floor(n, classifier=clf, real_feats=ref), 1)
        print(row(f'floor, held-out images', floors[n]) + f'  ({t:.1f} s)')
    x_train, y_train = load_fashion_mnist('train')
    for n in args.ns:                      # the same count of images the classifier was trained on, for comparison
        idx = torch.randperm(50_000, generator=torch.Generator().manual_seed(0))[:n]
        seen = evaluate_samples(x_train[idx], y_train[idx], classifier=clf, real_feats=ref)
        print(row('classifier-seen train images', seen) + f"  FD ratio seen/held-out {seen['fd'] / floors[n]['fd']:.2f}")

    print('\nnoise-corrupted held-out images (Gaussian pixel noise, images in [-1, 1]):')
    x_held, y_held = held_out_images()
    n = min(args.ns)
    idx = torch.randperm(len(x_held), generator=torch.Generator().manual_seed(0))[:n]
    for sigma in (0.05, 0.1, 0.2, 0.4, 0.8):
        noisy = (x_held[idx] + sigma * torch.randn(x_held[idx].shape, generator=torch.Generator().manual_seed(2))).clamp(-1, 1)
        r, t = timed(lambda: evaluate_samples(noisy, y_held[idx], classifier=clf, real_feats=ref), args.repeats)
        print(row(f'noise std {sigma}', r) + f"  FD / floor {r['fd'] / floors[n]['fd']:7.1f}  ({t:.2f} s per evaluation)")
    uniform = torch.rand(n, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    r = evaluate_samples(uniform, y_held[idx], classifier=clf, real_feats=ref)
    print(row('uniform noise images', r) + f"  FD / floor {r['fd'] / floors[n]['fd']:7.1f}")


if __name__ == '__main__':
    main()
