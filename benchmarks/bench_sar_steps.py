"""Sample quality against inference steps and orders for the three FMTs of notebook 06 (AR, MAR-like, SAR-TS).

The paper's generalisation claims in miniature (Liu et al. 2024, arXiv 2410.10511): a model trained on random orders
should keep its quality when sampled in other orders and with fewer steps; a raster-trained model should collapse at few
steps. For each model, order and number of steps S this script draws `--n-per-class` class-conditional samples per class
with the plain sampler (`sar_ref.fmt.generate` with `kv_cache=False`; `--kv-cache` for the cached one; S = 64: one
token per step; S < 64: the cosine schedule with S sets), times them (image decoding included), and scores them
with `sar_ref.evaluation.evaluate_samples` (classifier-feature Frechet distance, class accuracy, precision, recall). The
real-data floor at the same sample count is printed first. Timings are medians over the per-batch timings.

The models come from `checkpoint_dir()` (`sar_ref.fmt.load_fmt`; trained first if missing, about 3 minutes each on a
quiet 2-core CPU).

    python benchmarks/bench_sar_steps.py [--device cuda] [--n-per-class 100] [--steps 64 16 8 4] [--orders random raster spiral]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sar_ref.data import get_device
from sar_ref.evaluation import evaluate_samples, real_data_floor
from sar_ref.fmt import FMT_CFG, FMT_CFG_SCHEDULE, generate, load_fmt, load_tokenizer
from sar_ref.partitions import make_partition

MODELS = ('AR', 'MAR', 'SAR-TS')


def intervals_for(steps: int, n: int) -> str:
    "One token per step at S = N, else MaskGIT's cosine schedule with S sets."
    return 'ar' if steps == n else f'cosine:{steps}'


def sample(model, order: str, steps: int, n_per_class: int, batch: int, cfg: float, seed: int, device, kv_cache: bool = False):
    "Class-balanced samples (images, labels) and the median seconds per image."
    labels = torch.arange(10, device=device).repeat_interleave(n_per_class)
    g = torch.Generator(device=device).manual_seed(seed)
    images, per_image = [], []
    for i in range(0, len(labels), batch):
        lab = labels[i:i + batch]
        part = make_partition(order, intervals_for(steps, model.cfg.h * model.cfg.w), model.cfg.h, model.cfg.w,
                              batch=len(lab), generator=g, device=device)
        if device.type == 'cuda': torch.cuda.synchronize()
        t0 = time.perf_counter()
        _, imgs = generate(model, lab, partition=part, cfg=cfg, generator=g, kv_cache=kv_cache)   # the model carries its tokenizer
        if device.type == 'cuda': torch.cuda.synchronize()
        per_image.append((time.perf_counter() - t0) / len(lab))
        images.append(imgs.cpu())
    return torch.cat(images), labels.cpu(), statistics.median(per_image)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default=None)
    ap.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    ap.add_argument('--steps', nargs='+', type=int, default=[64, 16, 8, 4])
    ap.add_argument('--orders', nargs='+', default=['random', 'raster', 'spiral'])
    ap.add_argument('--n-per-class', type=int, default=100)
    ap.add_argument('--batch', type=int, default=250)
    ap.add_argument('--cfg', type=float, default=FMT_CFG)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--kv-cache', action='store_true', help='sample with the KV cache (default: the plain sampler)')
    ap.add_argument('--json', default=None, help='also write the rows to this file')
    args = ap.parse_args()
    device = get_device(args.device)
    torch.set_grad_enabled(False)

    tokenizer = load_tokenizer(device=device)
    n = 10 * args.n_per_class
    floor = real_data_floor(n)
    print(f'device {device}, {n} samples per row, cfg {args.cfg} ({FMT_CFG_SCHEDULE}), {"cached" if args.kv_cache else "plain"} sampler')
    print(f"real-data floor at n={n}: FD {floor['fd']:.2f}, accuracy {floor['accuracy']:.3f}, "
          f"precision {floor['precision']:.3f}, recall {floor['recall']:.3f}\n")
    head = f"{'model':8} {'order':8} {'steps':>5} {'FD':>8} {'acc':>6} {'prec':>6} {'recall':>6} {'ms/img':>8}"
    print(head); print('-' * len(head))
    rows = []
    for name in args.models:
        model, history = load_fmt(name, tokenizer=tokenizer, device=device)
        for order in args.orders:
            for steps in args.steps:
                images, labels, s_per_image = sample(model, order, steps, args.n_per_class, args.batch,
                                                     args.cfg, args.seed, device, args.kv_cache)
                m = evaluate_samples(images, labels)
                rows.append(dict(model=name, order=order, steps=steps, ms_per_image=1000 * s_per_image, **m))
                print(f"{name:8} {order:8} {steps:5d} {m['fd']:8.2f} {m['accuracy']:6.3f} {m['precision']:6.3f} "
                      f"{m['recall']:6.3f} {1000 * s_per_image:8.2f}", flush=True)
    base = {(r['model'], r['order']): r['fd'] for r in rows if r['steps'] == max(args.steps)}
    print(f'\nFD relative to the same model and order at {max(args.steps)} steps (side by side):')
    for name in args.models:
        for order in args.orders:
            ratios = [f"{r['steps']}: {r['fd'] / base[(name, order)]:.2f}x" for r in rows if (r['model'], r['order']) == (name, order)]
            print(f'  {name:8} {order:8} ' + ', '.join(ratios))
    if args.json:
        with open(args.json, 'w') as f: json.dump({'floor': floor, 'rows': rows, 'args': vars(args)}, f, indent=1)


if __name__ == '__main__':
    main()
