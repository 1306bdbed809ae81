"""What each change to the VQ-VAE's training buys, scored the way samples are: one variant per run.

    OMP_NUM_THREADS=1 python benchmarks/bench_tokenizer_ablation.py mse
    OMP_NUM_THREADS=1 python benchmarks/bench_tokenizer_ablation.py perceptual --perceptual 1
    OMP_NUM_THREADS=1 python benchmarks/bench_tokenizer_ablation.py perceptual_wide_net --perceptual 1 --net-channels 32,64,128 --net-double
    OMP_NUM_THREADS=1 python benchmarks/bench_tokenizer_ablation.py adversarial --adversarial 0.1 --adversarial-start 200
    OMP_NUM_THREADS=1 python benchmarks/bench_tokenizer_ablation.py codes1024 --perceptual 1 --vocab 1024

Each run trains the default VQ-VAE (800 steps x 64, seed 0) with the variant's loss, then scores its reconstructions
of 1,000 held-out training images (`held_out_sample(1000)`) against the *validation* reference (the held-out training
images, never the test split) in the judge's features (the classifier at `--judge`, default the shared checkpoint),
beside the floor: those 1,000 real images themselves. It appends one JSON line to `--out`.

Variants: `--perceptual W` adds W x the perceptual loss in a `PerceptualNet` trained first (`--net-channels`,
`--net-double` for two convs per stage, `--net-steps`); `--adversarial W` adds a hinge-loss patch discriminator
(VQGAN-style, W x the generator term, from step `--adversarial-start`), trained in the same optimiser step with its
own loss on detached reconstructions; `--vocab` changes the codebook size.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from sar_ref.data import as_dataset, train_split
from sar_ref.evaluation import evaluate_samples, held_out_sample, load_or_train_classifier, real_features, reconstruct
from sar_ref.training import TrainConfig, fit, load_model
from sar_ref.vqvae import VQVAE, PerceptualConfig, PerceptualNet, VQVAEConfig, reconstruction_metrics, vq_training_loss


class DoubleConvNet(PerceptualNet):
    "PerceptualNet with two 3x3 convs per stage (a VGG block): a heavier alternative."
    def __init__(self, cfg):
        super().__init__(cfg)
        c_in, stages = cfg.in_channels, []
        for c in cfg.channels:
            stages.append(nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                                        nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)))
            c_in = c
        self.stages = nn.ModuleList(stages)


class PatchDiscriminator(nn.Module):
    "Four convs to a 8x8 map of real/fake logits for 32 px images."
    def __init__(self, in_channels=1, c=32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(c, 2 * c, 4, 2, 1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2),
                                 nn.Conv2d(2 * c, 2 * c, 3, 1, 1), nn.GroupNorm(8, 2 * c), nn.LeakyReLU(0.2),
                                 nn.Conv2d(2 * c, 1, 3, 1, 1))

    def forward(self, x): return self.net(x)


class AdversarialVQVAE(VQVAE):
    "A VQ-VAE whose loss adds a hinge GAN term; the discriminator is a submodule trained by the same optimiser."
    def __init__(self, cfg, weight, start):
        super().__init__(cfg)
        self.disc, self.weight, self.start, self.calls = PatchDiscriminator(cfg.in_channels), weight, start, 0

    def compute_loss(self, batch):
        images = batch[0]
        loss, metrics = vq_training_loss(self, batch)
        self.calls += 1
        if self.calls > self.start:
            recon, _ = self(images)
            frozen = {k: v.detach() for k, v in self.disc.named_parameters()}      # the generator term moves the VQ-VAE only
            g = -functional_call(self.disc, frozen, (recon,)).mean()
            d = F.relu(1 - self.disc(images)).mean() + F.relu(1 + self.disc(recon.detach())).mean()
            loss, metrics['g'], metrics['d'] = loss + self.weight * g + d, g.detach(), d.detach()
        return loss, metrics


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('name')
    p.add_argument('--perceptual', type=float, default=0.0)
    p.add_argument('--net-channels', default='16,32,64')
    p.add_argument('--net-double', action='store_true')
    p.add_argument('--net-steps', type=int, default=200)
    p.add_argument('--adversarial', type=float, default=0.0)
    p.add_argument('--adversarial-start', type=int, default=200)
    p.add_argument('--vocab', type=int, default=256)
    p.add_argument('--steps', type=int, default=800)
    p.add_argument('--judge', default=None, help='classifier checkpoint (default: the shared one)')
    p.add_argument('--out', default='tokenizer_ablation.jsonl')
    a = p.parse_args()
    data = as_dataset('fashion_mnist')
    images, labels = train_split(data, None)
    t0 = time.perf_counter()
    net = None
    if a.perceptual > 0:
        pcfg = PerceptualConfig(channels=tuple(int(c) for c in a.net_channels.split(',')), data=data.spec)
        net = (DoubleConvNet if a.net_double else PerceptualNet)(pcfg)
        tcfg = TrainConfig(steps=a.net_steps, batch_size=128, lr=3e-3, warmup_steps=min(30, a.net_steps // 10), weight_decay=0.01,
                           ema_decay=0.0, seed=1, log_every=min(25, a.net_steps), progress=False)
        net = fit(net, (images, labels), tcfg).model.eval().requires_grad_(False)
    cfg = VQVAEConfig(vocab_size=a.vocab)
    torch.manual_seed(0)
    model = AdversarialVQVAE(cfg, a.adversarial, a.adversarial_start) if a.adversarial > 0 else VQVAE(cfg)
    if net is not None: model.perceptual = (net, a.perceptual)
    tcfg = TrainConfig(steps=a.steps, batch_size=64, lr=2e-3, warmup_steps=min(100, a.steps // 10), weight_decay=0.0,
                       ema_decay=0.0, seed=0, log_every=100, progress=False)
    model = fit(model, (images, labels), tcfg).model.eval()
    seconds = time.perf_counter() - t0
    model.perceptual = None
    judge = load_model(a.judge, kind='classifier') if a.judge else load_or_train_classifier()
    ref = real_features(classifier=judge, split='validation')
    x, y = held_out_sample(1000, data)
    floor = evaluate_samples(x, y, classifier=judge, real_feats=ref)
    ceiling = evaluate_samples(reconstruct(model, x), y, classifier=judge, real_feats=ref)
    row = dict(name=a.name, args=vars(a), train_s=round(seconds, 1), fd=round(ceiling['fd'], 2), floor=round(floor['fd'], 2),
               x_floor=round(ceiling['fd'] / floor['fd'], 2), accuracy=round(ceiling['accuracy'], 3),
               floor_accuracy=round(floor['accuracy'], 3), psnr=round(reconstruction_metrics(model, x)['psnr'], 2),
               threads=torch.get_num_threads())
    print(json.dumps(row))
    with open(a.out, 'a') as f: f.write(json.dumps(row) + '\n')


if __name__ == '__main__':
    main()
