"""Training throughput of a transformer step (forward + backward + AdamW), raw and through `sar_ref.training.fit`.

Presets:
  var  the size of this project's Fashion-MNIST VAR (sar_ref.var VARConfig.fashion): 130 tokens (patch_nums
       1,2,3,4,6,8) under VAR's block-causal mask, width 192, depth 4, 4 heads, vocabulary 256 (the CPU figure;
       plain pre-norm blocks stand in for VAR's AdaLN ones, which add the class-conditioning matmuls).
  gpt  a GPT-2-small-like model, ~124M parameters: width 768, depth 12, 12 heads, 1024 tokens, vocabulary 50304
       (padded to a multiple of 64), tied embeddings, causal flash attention (the GPU / MFU figure).

Model FLOPs per sequence (Kaplan et al. 2020; PaLM appendix B; nanoGPT's estimate_mfu):
  F = 6 * N * T + 12 * L * T^2 * d
where N = parameters excluding the position embedding (the tied token embedding counts: it is the output matmul),
T = tokens per sequence, L = depth, d = width. 6NT covers the matmuls of forward (2NT) and backward (4NT); 12LT^2d
the attention scores and values, counted without causal savings. MFU = F * sequences/s / peak; peak defaults to the
H100 SXM dense bf16 figure, 989 TFLOP/s.

  python benchmarks/bench_training.py                                      # CPU, var preset
  python benchmarks/bench_training.py --device cuda --precision bf16 --compile --preset gpt --batch 16
"""
import argparse
import platform
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from sar_ref.training import LossModule, TrainConfig, autocast, enable_tf32, fit, make_optimizer, resolve_precision


@dataclass
class GPTConfig:
    vocab_size: int = 256
    seq_len: int = 130
    width: int = 192
    depth: int = 4
    heads: int = 4
    block_causal: tuple = (1, 2, 3, 4, 6, 8)    # VAR's patch_nums for a block-causal mask; () for a causal one


PRESETS = {'var': GPTConfig(),
           'gpt': GPTConfig(vocab_size=50304, seq_len=1024, width=768, depth=12, heads=12, block_causal=())}


class Block(nn.Module):
    "Pre-norm transformer block: attention through F.scaled_dot_product_attention, then a 4x GELU MLP."
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.heads = cfg.heads
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width, bias=False), nn.LayerNorm(cfg.width, bias=False)
        self.qkv, self.proj = nn.Linear(cfg.width, 3 * cfg.width, bias=False), nn.Linear(cfg.width, cfg.width, bias=False)
        self.fc1, self.fc2 = nn.Linear(cfg.width, 4 * cfg.width, bias=False), nn.Linear(4 * cfg.width, cfg.width, bias=False)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate='tanh'))


class GPT(nn.Module):
    "Decoder-only transformer with tied input/output embeddings; compute_loss is next-token cross-entropy."
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg, self.tokens_per_sample = cfg, cfg.seq_len
        self.tok = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos_emb = nn.Parameter(torch.randn(1, cfg.seq_len, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(cfg.width, bias=False)
        self.head = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight
        if cfg.block_causal:
            scale = torch.cat([torch.full((p * p,), i) for i, p in enumerate(cfg.block_causal)])
            assert len(scale) == cfg.seq_len, f'seq_len={cfg.seq_len}: patch_nums give {len(scale)} tokens'
            self.register_buffer('mask', scale[None, :] <= scale[:, None], persistent=False)   # (T, T) block-causal
        else: self.mask = None
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)): nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx):
        x = self.tok(idx) + self.pos_emb                       # (B, T, C)
        for blk in self.blocks: x = blk(x, self.mask)
        return self.head(self.ln_f(x))                         # (B, T, V)

    def compute_loss(self, batch):
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten()), {}     # autocast computes it in fp32

    def n_params_for_flops(self):
        return sum(p.numel() for p in self.parameters()) - self.pos_emb.numel()


def flops_per_sequence(model: GPT) -> float:
    c = model.cfg
    return 6 * model.n_params_for_flops() * c.seq_len + 12 * c.depth * c.seq_len ** 2 * c.width


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


def raw_steps(model, batch, cfg, device, precision, compile_, warmup, steps, repeats):
    "Seconds per step of the bare loop (autocast forward, backward, clip, fused AdamW), median over repeats."
    opt = make_optimizer(model, cfg, device)
    net = torch.compile(LossModule(model)) if compile_ else LossModule(model)
    params = [p for p in model.parameters() if p.requires_grad]
    def step():
        with autocast(device, precision): loss, _ = net(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
    t = time.perf_counter()
    for _ in range(warmup): step()
    sync(device)
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        sync(device); t = time.perf_counter()
        for _ in range(steps): step()
        sync(device); times.append((time.perf_counter() - t) / steps)
    return statistics.median(times), compile_s


def fit_steps(model, data, cfg, device, steps, warmup):
    "Seconds per step through fit (data loader, EMA, logging included), median over the logged windows after warmup."
    cfg = TrainConfig(**{**cfg.__dict__, 'steps': warmup + 3 * steps, 'log_every': steps, 'progress': False})
    rows = fit(model, data, cfg, device=device).history
    return statistics.median(cfg.batch_size / r['samples_per_s'] for r in rows if r['step'] > warmup)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', choices=PRESETS, default=None, help='default: var on CPU, gpt on CUDA')
    p.add_argument('--device', default='cpu')
    p.add_argument('--precision', default='auto', choices=('auto', 'fp32', 'bf16', 'fp16'))
    p.add_argument('--compile', action='store_true')
    p.add_argument('--batch', type=int, default=None, help='sequences per step (default 32 var, 16 gpt)')
    p.add_argument('--width', type=int); p.add_argument('--depth', type=int); p.add_argument('--heads', type=int)
    p.add_argument('--steps', type=int, default=10, help='timed steps per repeat')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--warmup', type=int, default=None, help='untimed steps first (default 3, 10 with --compile)')
    p.add_argument('--peak-tflops', type=float, default=989.0, help='for MFU on CUDA (H100 SXM dense bf16: 989)')
    p.add_argument('--no-fit', action='store_true', help='skip the measurement through fit')
    a = p.parse_args()

    device = torch.device(a.device)
    preset = a.preset or ('gpt' if device.type == 'cuda' else 'var')
    gcfg = PRESETS[preset]
    gcfg = GPTConfig(**{**gcfg.__dict__, **{k: v for k in ('width', 'depth', 'heads') if (v := getattr(a, k))}})
    B = a.batch or (16 if preset == 'gpt' else 32)
    warmup = a.warmup if a.warmup is not None else (10 if a.compile else 3)
    precision = resolve_precision(a.precision, device)
    if device.type == 'cuda': enable_tf32()
    torch.manual_seed(0)
    model = GPT(gcfg).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, gcfg.vocab_size, (B, gcfg.seq_len), generator=g)
    batch = (x.to(device), x.roll(-1, 1).to(device))
    cfg = TrainConfig(batch_size=B, precision=precision, compile=a.compile, warmup_steps=1, ema_decay=0.999)

    n = sum(p.numel() for p in model.parameters())
    F_seq = flops_per_sequence(model)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads'
    print(f'preset={preset} width={gcfg.width} depth={gcfg.depth} heads={gcfg.heads} T={gcfg.seq_len} V={gcfg.vocab_size} '
          f'params={n / 1e6:.1f}M (N for FLOPs {model.n_params_for_flops() / 1e6:.1f}M) batch={B}')
    print(f'device={name} precision={precision} compile={a.compile} torch={torch.__version__}')
    print(f'model FLOPs per sequence = 6*N*T + 12*L*T^2*d = {F_seq / 1e9:.2f} GFLOP')

    sec, compile_s = raw_steps(model, batch, cfg, device, precision, a.compile, warmup, a.steps, a.repeats)
    rows = [('raw step', sec)]
    if not a.no_fit:
        torch.manual_seed(0)
        data = (x.repeat(4, 1), x.roll(-1, 1).repeat(4, 1))   # 4 batches per epoch; moved to the device by fit
        rows.append(('through fit', fit_steps(GPT(gcfg), data, cfg, device, a.steps, warmup)))
    print(f'warmup ({warmup} steps{", compiling" if a.compile else ""}): {compile_s:.1f} s')
    print(f'{"":12s} {"ms/step":>9s} {"images/s":>9s} {"tokens/s":>10s} {"TFLOP/s":>8s} {"MFU":>6s} {"speed vs raw":>13s}')
    for label, s in rows:
        tflops = F_seq * B / s / 1e12
        mfu = f'{100 * tflops / a.peak_tflops:5.1f}%' if device.type == 'cuda' else '    -'
        print(f'{label:12s} {1e3 * s:9.1f} {B / s:9.1f} {B * gcfg.seq_len / s:10.0f} {tflops:8.3f} {mfu:>6s} {sec / s:13.2f}')


if __name__ == '__main__':
    main()
