"""A tiny training run for tests/test_training.py: an MLP with dropout on synthetic data, through `fit`.

Run it plainly, under `torchrun`, slowed down (env SAR_REF_TEST_DELAY seconds per forward) so a test can kill it,
or with --resume to continue from its out_dir.
"""
import argparse
import os
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from sar_ref.data import make_loader
from sar_ref.training import TrainConfig, fit, register_model


@dataclass
class MLPConfig:
    width: int = 32
    dropout: float = 0.2


@register_model
class MLP(nn.Module):
    "Classifier with dropout (so resume must restore the random state to repeat a run); its two blocks in a ModuleList, as FSDP's units."
    kind = 'test_mlp'

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList([
            nn.Sequential(nn.Linear(16, cfg.width), nn.LayerNorm(cfg.width), nn.GELU(), nn.Dropout(cfg.dropout)),
            nn.Sequential(nn.Linear(cfg.width, cfg.width), nn.GELU())])
        self.head = nn.Linear(cfg.width, 4)

    def forward(self, x):
        for block in self.blocks: x = block(x)
        return self.head(x)

    def compute_loss(self, batch):
        x, y = batch
        if delay := float(os.environ.get('SAR_REF_TEST_DELAY', 0)): time.sleep(delay)
        logits = self(x)
        return F.cross_entropy(logits, y), {'acc': (logits.argmax(-1) == y).float().mean()}


def synthetic_data(n: int = 256):
    "Fixed 16-d inputs and 4 classes given by the signs of two projections."
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, generator=g)
    y = (x[:, 0] > 0).long() * 2 + (x[:, 1] + x[:, 2] > 0).long()
    return x, y


def train(out_dir, steps=40, batch_size=16, ckpt_every=5, dropout=0.2, resume=False, grad_accum=1, seed=0, strategy='ddp',
          resume_from=None):
    "Build the model and data, call fit, return its FitResult."
    torch.manual_seed(seed)
    model = MLP(MLPConfig(dropout=dropout))
    cfg = TrainConfig(steps=steps, lr=3e-3, warmup_steps=5, log_every=1, ckpt_every=ckpt_every, grad_accum=grad_accum,
                      out_dir=str(out_dir), progress=False, seed=seed, ema_decay=0.95,
                      strategy=strategy)
    return fit(model, make_loader(*synthetic_data(), batch_size=batch_size, seed=seed), cfg, device='cpu', resume=resume,
               resume_from=resume_from)


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--out', required=True)
    p.add_argument('--steps', type=int, default=40)
    p.add_argument('--batch', type=int, default=16, help='per-process batch size')
    p.add_argument('--ckpt-every', type=int, default=5)
    p.add_argument('--dropout', type=float, default=0.2)
    p.add_argument('--grad-accum', type=int, default=1)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--strategy', default='ddp', choices=('ddp', 'fsdp'))
    p.add_argument('--resume-from', default=None, help='a checkpoint file to continue from')
    a = p.parse_args()
    torch.set_num_threads(1)
    train(a.out, a.steps, a.batch, a.ckpt_every, a.dropout, a.resume, a.grad_accum, strategy=a.strategy, resume_from=a.resume_from)
