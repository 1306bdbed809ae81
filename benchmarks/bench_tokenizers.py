#!/usr/bin/env python
"""Tokenizer benchmark: test-split reconstruction (MSE, PSNR on the [0, 1] scale), codebook usage and perplexity,
training time and encode+decode throughput of the VQ-VAE (sar_ref.vqvae) and the multi-scale tokenizer (sar_ref.msvq).

Trains both with their default presets (the multi-scale one warm-started from the VQ-VAE) unless --load is given,
in which case it reads the checkpoints `vqvae.pt` and `msvq.pt` from --ckpt-dir (default: sar_ref.data.checkpoint_dir()).

    python benchmarks/bench_tokenizers.py                       # train both (about 4 min on a quiet 2-core CPU), evaluate
    python benchmarks/bench_tokenizers.py --load                # evaluate the saved checkpoints
    python benchmarks/bench_tokenizers.py --device cuda --vq-steps 4000 --ms-steps 2000
    python benchmarks/bench_tokenizers.py --load --ckpt-dir runs/shapes --data shapes   # a main job's tokenizers on its data
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from sar_ref.data import as_dataset, checkpoint_dir, get_device
from sar_ref.msvq import MultiScaleVQVAE, train_msvq
from sar_ref.training import load_checkpoint, load_model
from sar_ref.vqvae import VQVAE, reconstruction_metrics, train_vqvae


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default=None, help="cpu, cuda, ... (default: best available)")
    p.add_argument('--load', action='store_true', help='evaluate the saved checkpoints instead of training')
    p.add_argument('--ckpt-dir', default=None, help='where vqvae.pt and msvq.pt are read / written')
    p.add_argument('--vq-steps', type=int, default=None, help="VQ-VAE training steps (default: train_vqvae's)")
    p.add_argument('--ms-steps', type=int, default=None, help="multi-scale training steps (default: train_msvq's)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--data', default='fashion_mnist', help='the images (a sar_ref.data.load_dataset string: shapes, folder:PATH, ...)')
    p.add_argument('--image-size', type=int, default=None, help="side of the images (default: the dataset's own)")
    p.add_argument('--channels', type=int, default=None, help="1 or 3 (default: the dataset's own)")
    p.add_argument('--n-test', type=int, default=10_000, help='test images to evaluate on')
    p.add_argument('--repeats', type=int, default=5, help='timing repeats of encode+decode (median reported)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s choice)')
    p.add_argument('--json', default=None, help='also write the results to this JSON file')
    return p.parse_args()


def train_s_of(path: Path) -> float | None:
    "Training wall time stored in a checkpoint by train_vqvae / train_msvq."
    return load_checkpoint(path).get('extra', {}).get('train_s')


def codec_throughput(model, images, repeats: int) -> float:
    "Median images per second of decode(encode(images)), after one warm-up."
    model.decode(model.encode(images))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.decode(model.encode(images))
        if images.device.type == 'cuda': torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return len(images) / statistics.median(times)


def main():
    a = parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    device = get_device(a.device)
    ckpt = Path(a.ckpt_dir) if a.ckpt_dir else checkpoint_dir()
    vq_path, ms_path = ckpt / 'vqvae.pt', ckpt / 'msvq.pt'
    data = as_dataset(a.data, a.image_size, a.channels)
    if a.load:
        vq, ms = load_model(vq_path, kind='vqvae', device=device), load_model(ms_path, kind='msvq', device=device)
    else:
        vq_kw = {} if a.vq_steps is None else {'steps': a.vq_steps}
        ms_kw = {} if a.ms_steps is None else {'steps': a.ms_steps}
        vq, _ = train_vqvae(device=device, seed=a.seed, ckpt_path=vq_path, data=data, **vq_kw)
        ms, _ = train_msvq(device=device, seed=a.seed, ckpt_path=ms_path, init_from=vq, data=data, **ms_kw)
    x_test = data.test_images[:a.n_test]
    rows = {}
    for name, model, path in (('vqvae', vq, vq_path), ('msvq', ms, ms_path)):
        r = reconstruction_metrics(model, x_test, device=device)
        r['train_s'] = train_s_of(path)
        r['tokens'] = model.cfg.seq_len if isinstance(model, MultiScaleVQVAE) else model.cfg.latent_size ** 2
        r['params'] = sum(p.numel() for p in model.parameters())
        r['codec_img_per_s'] = codec_throughput(model, x_test[:1000].to(device), a.repeats)
        rows[name] = r
    print(f"device: {device}  ({torch.get_num_threads()} CPU threads)  data: {data}  test images: {len(x_test)}")
    print(f"{'tokenizer':10s} {'tokens':>6s} {'params':>8s} {'PSNR dB':>8s} {'MSE':>8s} {'usage':>6s} {'ppl':>6s} "
          f"{'train s':>8s} {'codec img/s':>11s}")
    for name, r in rows.items():
        train = f"{r['train_s']:.0f}" if r['train_s'] is not None else '-'
        print(f"{name:10s} {r['tokens']:6d} {r['params']:8d} {r['psnr']:8.2f} {r['mse']:8.5f} {r['usage']:6.1%} "
              f"{r['perplexity']:6.0f} {train:>8s} {r['codec_img_per_s']:11.0f}")
    v, m = rows['vqvae'], rows['msvq']
    print(f"msvq - vqvae PSNR: {m['psnr'] - v['psnr']:+.2f} dB; msvq / vqvae MSE: {m['mse'] / v['mse']:.2f}x; "
          f"codec time msvq / vqvae: {v['codec_img_per_s'] / m['codec_img_per_s']:.2f}x")
    if v['train_s'] and m['train_s']: print(f"training time, both: {v['train_s'] + m['train_s']:.0f} s")
    if a.json: Path(a.json).write_text(json.dumps({'device': str(device), 'args': vars(a), 'results': rows}, indent=1))


if __name__ == '__main__':
    main()
