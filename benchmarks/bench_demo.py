"""What the main job (`sar_ref_demo`) costs at a budget, stage by stage, estimated from a few timed steps of each model.

    python benchmarks/bench_demo.py                       # default budget, torch's threads, CPU
    python benchmarks/bench_demo.py --threads 1           # CPU time of one thread: an upper bound for a quiet 2-core CPU
    python benchmarks/bench_demo.py --budget gpu --device cuda

For every training stage it times `--steps` optimiser steps (forward, backward, clipping, AdamW; after 2 warm-up steps) of
the model the stage trains, at the recipe's model size, batch size and perceptual weight, and multiplies the median by the budget's step count; it times
the tokenisation of the training set the generators need, and the sampling of each results row (`--sample-n` images,
scaled to the budget's sample count, KV-cached samplers, untrained weights: sampling time does not depend on them).
It prints wall and process-CPU seconds side by side: on a machine shared with other jobs the wall time is inflated,
the CPU time much less so.
"""
import argparse
import resource
import statistics
import time

import torch

from sar_ref.study import BUDGETS, ROWS, class_major_labels, default_arg, fmt_config, sample_images, var_config
from sar_ref.data import get_device, load_fashion_mnist
from sar_ref.evaluation import ClassifierConfig, Classifier, train_classifier
from sar_ref.fmt import FMT, train_fmt
from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE, train_msvq
from sar_ref.training import TrainConfig, make_optimizer
from sar_ref.var import VAR, tokenize_dataset, train_var
from sar_ref.vqvae import VQVAE, PerceptualNet, VQVAEConfig, train_perceptual, train_vqvae


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def step_times(model, data, batch_size, steps, device):
    "Median wall and CPU seconds of one training step over `steps` steps after 2 warm-up steps."
    model.to(device).train()
    opt = make_optimizer(model, TrainConfig(), device)
    walls, cpus = [], []
    for i in range(steps + 2):
        idx = torch.randint(len(data[0]), (batch_size,))
        batch = tuple(t[idx].to(device) for t in data)
        sync(device); w, c = time.perf_counter(), cpu_seconds()
        loss, _ = model.compute_loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        sync(device)
        if i >= 2: walls.append(time.perf_counter() - w); cpus.append(cpu_seconds() - c)
    return statistics.median(walls), statistics.median(cpus)


def timed(fn, device):
    sync(device); w, c = time.perf_counter(), cpu_seconds()
    out = fn()
    sync(device)
    return out, time.perf_counter() - w, cpu_seconds() - c


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--budget', default='default', choices=[b for b in BUDGETS if b != 'tiny'])
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    p.add_argument('--steps', type=int, default=8, help='timed training steps per model')
    p.add_argument('--sample-n', type=int, default=100, help='images sampled per row (scaled to the budget)')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    device, b = get_device(a.device), BUDGETS[a.budget]
    torch.manual_seed(0)
    x, y = load_fashion_mnist('train', 2000)
    rows = []                        # (what, wall seconds, cpu seconds)

    def train_row(name, model, data, fn, family):
        kw = b.train_kw(family)
        bs = kw.get('batch_size', default_arg(fn, 'batch_size'))
        if kw.get('perceptual', 0) > 0: model.perceptual = (PerceptualNet().requires_grad_(False), kw['perceptual'])
        w, c = step_times(model, data, bs, a.steps, device)
        n = b.train_steps(fn, family)
        rows.append((f'{name}: {n} steps x {bs}', w * n, c * n))
        print(f'{name:<12} {w * 1000:8.1f} ms/step wall {c * 1000:8.1f} ms/step cpu', flush=True)

    train_row('classifier', Classifier(ClassifierConfig()), (x, y), train_classifier, 'classifier')
    train_row('perceptual', PerceptualNet(), (x, y), train_perceptual, 'perceptual')
    vq_cfg = VQVAEConfig(**b.model_kw('vqvae'))
    train_row('vqvae', VQVAE(vq_cfg), (x, y), train_vqvae, 'vqvae')
    msvq = MultiScaleVQVAE(MSVQConfig(**b.model_kw('vqvae')))     # the multi-scale tokenizer takes the VQ-VAE's architecture
    train_row('msvq', msvq, (x, y), train_msvq, 'msvq')
    msvq.perceptual = None
    msvq.to(device).eval()
    tok, w, c = timed(lambda: tokenize_dataset(msvq, x), device)
    rows.append(('msvq tokenises 60,000 images', w * 30, c * 30))
    var = VAR(var_config(msvq, **b.model_kw('var')), msvq)
    train_row('var', var, (tok, y), train_var, 'var')
    vq = VQVAE(vq_cfg).to(device).eval()
    fmt_tok, w, c = timed(lambda: tokenize_dataset(vq, x), device)
    rows.append(('vqvae tokenises 60,000 images (once, cached)', w * 30, c * 30))
    fmts = {}
    for preset in ('AR', 'MAR', 'SAR-TS'):
        fmts[preset] = FMT(fmt_config(preset, vq, **b.model_kw('fmt')), vq)      # the generator carries its tokenizer
        train_row(f'fmt {preset}', fmts[preset], (fmt_tok, y), train_fmt, 'fmt')

    n_budget = 10 * b.per_class
    labels = class_major_labels(a.sample_n // 10)
    var = var.to(device).eval()
    for r in ROWS:
        model = var if r.method == 'VAR' else fmts[r.method].to(device).eval()
        (_, _), w, c = timed(lambda: sample_images(model, labels, intervals=r.intervals, progress=False), device)
        scale = n_budget / len(labels)
        rows.append((f'sample {r.key}: {n_budget} images', w * scale, c * scale))

    print(f'\nbudget {b.name!r}, device {device}, {torch.get_num_threads()} thread(s), torch {torch.__version__}')
    print(f"{'stage':<48} {'wall s':>8} {'cpu s':>8}")
    for what, w, c in rows: print(f'{what:<48} {w:8.0f} {c:8.0f}')
    print(f"{'total (evaluation itself adds ~10 s)':<48} {sum(r[1] for r in rows):8.0f} {sum(r[2] for r in rows):8.0f}")


if __name__ == '__main__':
    main()
