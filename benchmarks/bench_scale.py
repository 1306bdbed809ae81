"""Paper-scale speed on one GPU: sampling throughput of VAR d16 and of FMTs of the same size, bf16 and compiled steps,
cached against uncached AR, exactness, training MFU, the attention backend. One run prints every figure as a table.

All models carry random weights at ImageNet-256 scale: VAR d16 (`VARConfig.official(16)`, 310M parameters, ten scales,
680 tokens, V = 4096) over the release's tokenizer shapes (`MSVQConfig.official()`), and FMTs of about the same size
(`FMTConfig.paper(preset, 16)`) over a 16x16 grid. A sampling call is one batch of class-conditional images with
classifier-free guidance (VAR: 1.5 ramped, top-k 900, top-p 0.96, as VAR's demo; FMT: 2.5 constant), decoding included
for VAR (the FMT has no tokenizer here: tokens only). img/s = batch / median seconds per call over `--repeats` calls
after a warm-up call (which also compiles).

    python benchmarks/bench_scale.py                        # one H100/H200, about 6-8 minutes
    python benchmarks/bench_scale.py --official PATH        # also the official VAR sampler on the same weights
    python benchmarks/bench_scale.py --smoke                # tiny models on the CPU in about a minute: the script runs

`--official` takes a checkout of github.com/FoundationVision/VAR (not part of this project; imported at run time with
the shims of `bench_var_official.py`). MFU = FLOPs of a training step (counted by PyTorch's FlopCounterMode, forward
and backward) / seconds per step / the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s; `--peak-tflops` overrides).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sar_ref.fmt import FMT, FMTConfig, generate as fmt_generate  # noqa: E402
from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE  # noqa: E402
from sar_ref.scaling import train_step_flops  # noqa: E402
from sar_ref.training import LossModule, autocast  # noqa: E402
from sar_ref.var import VAR, VARConfig, block_causal_mask, generate as var_generate  # noqa: E402

PEAK_BF16_TFLOPS = {'H100': 989.0, 'H200': 989.0, 'A100': 312.0, 'L40S': 362.0}   # dense, SXM where there are two
VAR_SAMPLING = dict(cfg=1.5, top_k=900, top_p=0.96)
FMT_SAMPLING = dict(cfg=2.5)
ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = ''):
    "Record and print one line of the final table."
    ROWS.append((what, value, note))
    print(f'  {what:58s} {value:>14s}  {note}', flush=True)


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def median_seconds(fn, device, repeats: int, warmup: int = 1) -> float:
    "Median wall seconds of fn() over `repeats` calls after `warmup` calls."
    for _ in range(warmup): fn(); sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(device); times.append(time.perf_counter() - t0)
    return statistics.median(times)


def attempt(what: str, fn):
    "Run fn(); on failure print one line (the table says 'failed') instead of stopping the benchmark."
    try: return fn()
    except Exception as e:                                               # a mode this GPU or PyTorch cannot run
        row(what, 'failed', f'{type(e).__name__}: {str(e).splitlines()[0][:90] if str(e) else ""}')
        traceback.print_exc(limit=2)
        return None


def build_models(smoke: bool, device):
    "VAR d16 over the release's tokenizer shapes and the FMT presets' config at the matched size (tiny ones for --smoke)."
    torch.manual_seed(0)
    if smoke:
        tok = MultiScaleVQVAE(MSVQConfig.tiny())
        var = VAR(VARConfig.tiny(vocab_size=tok.cfg.vocab_size, z_dim=tok.cfg.z_dim, patch_nums=tok.cfg.patch_nums, n_classes=1000), tok)
        VAR_SAMPLING['top_k'] = tok.cfg.vocab_size // 2
        fmt_cfg = lambda preset: FMTConfig.tiny(preset, vocab_size=64, h=8, w=8, n_classes=1000)
    else:
        tok = MultiScaleVQVAE(MSVQConfig.official())
        var = VAR(VARConfig.official(16), tok)
        fmt_cfg = lambda preset: FMTConfig.paper(preset, 16)
    return var.to(device).eval(), fmt_cfg


def sampling_section(var, fmt_cfg, args, device) -> dict:
    "Throughput of every sampler variant; returns img/s by name."
    B, reps, ips = args.batch, args.repeats, {}
    labels = (torch.arange(B) * 97 % 1000).to(device)
    compiled = {'backend': 'aot_eager'} if args.smoke else True
    print(f'\n## Sampling, batch {B}, cfg on', flush=True)

    def var_call(**kw):
        cache = var.make_cache()
        return lambda: var_generate(var, labels, generator=torch.Generator(device).manual_seed(0), kv_cache=cache,
                                    **VAR_SAMPLING, **kw)
    var_variants = {'fp32 (TF32) eager': {}, 'bf16 eager': dict(precision='bf16'),
                    'bf16 compiled': dict(precision='bf16', compile=compiled)}
    if not args.smoke: var_variants['bf16 compiled, CUDA graphs'] = dict(precision='bf16', compile={'mode': 'reduce-overhead'})
    for name, kw in var_variants.items():
        if args.no_compile and 'compile' in kw: continue
        s = attempt(f'VAR d16 {name}', lambda: median_seconds(var_call(**kw), device, reps))
        if s is not None: ips[f'VAR {name}'] = B / s; row(f'VAR d16 {name}', f'{B / s:.1f} img/s', f'{s * 1e3:.0f} ms/call')
    if args.official:
        for name, prec in (('fp32 (TF32)', 'fp32'), ('bf16 autocast', 'bf16')):
            s = attempt(f'official VAR d16 {name}', lambda: official_seconds(args, device, B, prec, reps))
            if s is not None: ips[f'official {name}'] = B / s; row(f'official VAR d16 sampler, {name}', f'{B / s:.1f} img/s', f'{s * 1e3:.0f} ms/call')

    fmt_models = {}
    for preset, intervals, label in (('SAR-TS', 'cosine:16', 'SAR-TS 16 sets'), ('SAR-TS', 'cosine:8', 'SAR-TS 8 sets'),
                                     ('MAR', 'cosine:64', 'MAR-like 64 sets'), ('AR', 'ar', 'AR raster, one token a step')):
        if preset not in fmt_models:
            torch.manual_seed(0)
            fmt_models[preset] = FMT(fmt_cfg(preset)).to(device).eval()
        model = fmt_models[preset]
        n_steps = model.cfg.h * model.cfg.w if intervals == 'ar' else int(intervals.split(':')[1])
        variants = {'bf16 eager': dict(precision='bf16'), 'fp32 (TF32) eager': {}}
        if n_steps <= 16 and not args.no_compile: variants['bf16 compiled'] = dict(precision='bf16', compile=compiled)
        for name, kw in variants.items():
            call = lambda: fmt_generate(model, labels, intervals=intervals, generator=torch.Generator(device).manual_seed(0),
                                        **FMT_SAMPLING, **kw)
            s = attempt(f'FMT {label} {name}', lambda: median_seconds(call, device, reps))
            if s is not None:
                ips[f'FMT {label} {name}'] = B / s
                row(f'FMT ({model.n_params() / 1e6:.0f}M) {label}, {name}', f'{B / s:.1f} img/s', f'{s * 1e3:.0f} ms/call')
        if preset == 'AR':
            plain = lambda: fmt_generate(model, labels, intervals=intervals, kv_cache=False, precision='bf16',
                                         generator=torch.Generator(device).manual_seed(0), **FMT_SAMPLING)
            s = attempt('FMT AR uncached', lambda: median_seconds(plain, device, 1, warmup=0))
            if s is not None:
                ips['FMT AR uncached bf16'] = B / s
                row(f'FMT AR raster, bf16, no KV cache', f'{B / s:.2f} img/s', f'{s:.1f} s/call')
    return ips


def official_seconds(args, device, B: int, precision: str, reps: int) -> float:
    "The official sampler (autoregressive_infer_cfg) on the release's shapes, random weights, under the given autocast."
    from bench_official_sampling import build                        # imports the official code with its shims
    if not hasattr(official_seconds, 'model'): official_seconds.model = build(args.official)[1].to(device).eval()
    theirs, labels = official_seconds.model, (torch.arange(B) * 97 % 1000).to(device)
    def call():
        with torch.no_grad(), autocast(device, precision):
            theirs.autoregressive_infer_cfg(B, labels, g_seed=0, **VAR_SAMPLING)
    return median_seconds(call, device, reps)


def exactness_section(var, fmt_cfg, device):
    "Cached == uncached tokens in fp32, and how often bf16 draws the fp32 token."
    print('\n## Exactness', flush=True)
    labels = torch.tensor([1, 207, 388, 980], device=device)
    g = lambda: torch.Generator(device).manual_seed(0)
    runs = {(kv, p): var_generate(var, labels, generator=g(), kv_cache=kv, precision=p, **VAR_SAMPLING)[0]
            for kv, p in ((True, 'fp32'), (False, 'fp32'), (True, 'bf16'))}
    same = all(torch.equal(a, b) for a, b in zip(runs[True, 'fp32'], runs[False, 'fp32']))
    agree = torch.cat([(a == b).flatten() for a, b in zip(runs[True, 'fp32'], runs[True, 'bf16'])]).float().mean().item()
    row('VAR d16: cached == uncached tokens, fp32', str(same))
    row('VAR d16: bf16 draws the fp32 token (same seed)', f'{agree:.1%}', 'a differing draw changes what follows')
    torch.manual_seed(0)
    fmt = FMT(fmt_cfg('SAR-TS')).to(device).eval()
    toks = {(kv, p): fmt_generate(fmt, labels, generator=g(), kv_cache=kv, precision=p, **FMT_SAMPLING)[0]
            for kv, p in ((True, 'fp32'), (False, 'fp32'), (True, 'bf16'))}
    row('FMT SAR-TS: cached == uncached tokens, fp32', str(torch.equal(toks[True, 'fp32'], toks[False, 'fp32'])))
    row('FMT SAR-TS: bf16 draws the fp32 token (same seed)', f"{(toks[True, 'fp32'] == toks[True, 'bf16']).float().mean().item():.1%}")


def sdpa_section(var, device):
    "Which scaled-dot-product-attention backends accept VAR's training attention (bf16, block-causal boolean mask)."
    print('\n## Attention backend', flush=True)
    H, L, D = var.cfg.n_heads, sum(p * p for p in var.cfg.patch_nums), var.cfg.width // var.cfg.n_heads
    q = k = v = torch.randn(2, H, L, D, device=device, dtype=torch.bfloat16 if device.type == 'cuda' else torch.float32)
    mask = block_causal_mask(var.cfg.patch_nums).to(device)
    usable = []
    for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH):
        try:
            with sdpa_kernel([backend]): F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            usable.append(backend.name)
        except RuntimeError: pass
    row('SDPA backends that run with the boolean mask', ', '.join(usable) or 'none',
        'PyTorch picks the first of its priority order among these')


def train_batch(model, B: int, device):
    "Random tokens and labels of a model's training batch."
    n = sum(p * p for p in model.cfg.patch_nums) if isinstance(model, VAR) else model.cfg.h * model.cfg.w
    return (torch.randint(model.cfg.vocab_size, (B, n), device=device), torch.randint(model.cfg.n_classes, (B,), device=device))


def mfu_section(var, fmt_cfg, args, device):
    "Seconds per bf16 training step (AdamW, compiled forward and backward) and the model FLOPs utilisation."
    print('\n## Training, bf16', flush=True)
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items()
                                     if device.type == 'cuda' and k in torch.cuda.get_device_name(device)), None)
    torch.manual_seed(0)
    models = {'VAR d16': var, 'FMT SAR-TS, VAR-d16 size': FMT(fmt_cfg('SAR-TS')).to(device)}
    for name, model in models.items():
        model.train()
        batch = train_batch(model, args.train_batch, device)
        flops = train_step_flops(model, batch)
        net = LossModule(model)
        if not args.no_compile: net = torch.compile(net, **({'backend': 'aot_eager'} if args.smoke else {}))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=device.type == 'cuda')
        def step():
            with autocast(device, 'bf16'): loss, _ = net(batch)
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        s = attempt(f'{name} training step', lambda: median_seconds(step, device, args.train_steps, warmup=3))
        if s is None: continue
        note = f'{flops / 1e12:.1f} TFLOP a step, batch {args.train_batch}, {model.n_params() / 1e6:.0f}M parameters'
        row(f'{name}: training step', f'{s * 1e3:.0f} ms', note)
        if peak: row(f'{name}: MFU', f'{flops / s / (peak * 1e12):.1%}', f'of {peak:.0f} TFLOP/s bf16 dense')
        model.eval()
        del opt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--official', default=os.environ.get('SAR_REF_OFFICIAL_VAR'), help='a FoundationVision/VAR checkout')
    ap.add_argument('--batch', type=int, default=64, help='images per sampling call')
    ap.add_argument('--repeats', type=int, default=5, help='timed sampling calls per variant')
    ap.add_argument('--train-batch', type=int, default=32)
    ap.add_argument('--train-steps', type=int, default=10, help='timed training steps per model (after 3 warm-up steps)')
    ap.add_argument('--peak-tflops', type=float, default=None, help="the GPU's dense bf16 peak (default: from its name)")
    ap.add_argument('--no-compile', action='store_true', help='skip the compiled variants')
    ap.add_argument('--smoke', action='store_true', help='tiny models (on the CPU unless a GPU is there): does the script run')
    args = ap.parse_args(argv)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if device.type != 'cuda' and not args.smoke: ap.error('no CUDA device: this benchmark is for a GPU (use --smoke to check it runs)')
    if args.smoke: args.batch, args.repeats, args.train_batch, args.train_steps = 4, 2, 4, 2
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        print(f'# {torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}', flush=True)
    else: print(f'# CPU smoke run, torch {torch.__version__}', flush=True)
    t0 = time.perf_counter()
    var, fmt_cfg = build_models(args.smoke, device)
    ips = sampling_section(var, fmt_cfg, args, device)
    exactness_section(var, fmt_cfg, device)
    sdpa_section(var, device)
    mfu_section(var, fmt_cfg, args, device)
    print('\n## Ratios', flush=True)
    best_var = max((v for k, v in ips.items() if k.startswith('VAR')), default=None)
    if best_var and 'official bf16 autocast' in ips: row('VAR d16 best / official (bf16)', f"{best_var / ips['official bf16 autocast']:.2f}x", 'goal >= 1.5x')
    sar = max((v for k, v in ips.items() if k.startswith('FMT SAR-TS 16 sets')), default=None)
    if best_var and sar: row('FMT SAR-TS 16 sets best / VAR d16 best', f'{sar / best_var:.2f}x', 'goal >= 2x')
    if 'FMT AR raster, one token a step bf16 eager' in ips and 'FMT AR uncached bf16' in ips:
        row('FMT AR 256 steps: KV cache / no cache (bf16, eager)',
            f"{ips['FMT AR raster, one token a step bf16 eager'] / ips['FMT AR uncached bf16']:.1f}x", 'goal >= 20x')
    print(f'\n# Table ({time.perf_counter() - t0:.0f} s in all)\n\n| measure | value | note |\n|---|---:|---|')
    for what, value, note in ROWS: print(f'| {what} | {value} | {note} |')


if __name__ == '__main__':
    torch.set_grad_enabled(True)
    main()
