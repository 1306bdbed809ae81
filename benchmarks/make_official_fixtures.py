"""Fixtures for tests/test_official.py: small models of the official VAR code (github FoundationVision/VAR) with random
weights, their inputs, and what the official code computes from them.

The official code is NOT part of this project: fetch it yourself and pass its folder with `--official PATH` (or the
environment variable SAR_REF_OFFICIAL_VAR). It is imported at run time, unmodified, with the shims of
`benchmarks/bench_var_official.py`. What this script writes is data (state dicts in the official key layout, tensors),
not code:

- `vqvae.pth`: an official VQVAE narrowed to test size with the structure of the released one: the latent-diffusion
  Encoder/Decoder (2 ResBlocks a level, attention at the lowest resolution and in the middle block, GroupNorm 32),
  quant_conv / post_quant_conv, 4 shared Phi convs blending by 0.5, the ten ImageNet-256 scales (a 16x16 latent).
  It is narrower (width 32 x (1, 1, 2, 2), four levels: 128 px images) so that the files stay small.
- `var.pth`: an official VAR of depth 3 over it (cosine attention, per-block AdaLN), `var_shared.pth`: depth 2 with
  shared AdaLN and plain attention (the other two switches of the official code).
- `outputs.pth`: the input image (uint8) and, from the official code: encoder latents, tokens per scale, f_hat,
  the decoded image, the teacher-forcing inputs; for both transformers the logits of a teacher-forced forward pass
  (labels including the null class) and one KV-cached sampling run under a fixed seed (tokens per scale, f_hat, images).

Every weight is drawn at random as k * 2^e: an int8 k and one power-of-two exponent e per tensor, and stored that way
(one byte per weight: `{'int8': {name: k}, 'exponent': {name: e}, 'buffers': {name: tensor}}`; `official_state_dict`
in tests/test_official.py turns it back into the official float32 state dict). The official code computes in float32
with exactly those values. The (L, L) attention-mask buffer of the transformers, a constant the converter ignores,
is left out. The transformers' `cond_drop_rate` is 0, because the official forward drops labels at random even in
eval mode.

    python benchmarks/make_official_fixtures.py --official /path/to/VAR [--out tests/fixtures/official]
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_var_official import import_official   # noqa: E402  (the official-code import with its shims)

PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)            # VAR's ImageNet-256 scales
VOCAB, Z, CH, CH_MULT, N_CLASSES = 64, 16, 32, (1, 1, 2, 2), 10
IMAGE = 16 * 2 ** (len(CH_MULT) - 1)                      # 128 px: a 16x16 latent after three halvings


def narrow_vqvae(OfficialVQVAE, Encoder, Decoder):
    "The official VQVAE with its encoder and decoder rebuilt by the official classes at test width (same structure)."
    vae = OfficialVQVAE(vocab_size=VOCAB, z_channels=Z, ch=CH, test_mode=True, share_quant_resi=4, v_patch_nums=PATCH_NUMS)
    dd = dict(dropout=0.0, ch=CH, z_channels=Z, in_channels=3, ch_mult=CH_MULT, num_res_blocks=2, using_sa=True, using_mid_sa=True)
    vae.encoder, vae.decoder = Encoder(double_z=False, **dd), Decoder(**dd)
    return vae.eval().requires_grad_(False)


def int8_levels(v: torch.Tensor) -> tuple[torch.Tensor, int]:
    "(k int8, e) with k * 2**e close to v; the exponent fits the largest |v| into 127 levels."
    top = v.abs().max().item()
    e = math.ceil(math.log2(top / 127)) if top > 0 else 0
    return torch.round(v / 2 ** e).clamp(-127, 127).to(torch.int8), e


@torch.no_grad()
def randomize(model, g, std_of, shift_of=lambda name: 0.0):
    "Redraw every parameter as shift + std * N(0, 1), then snap it to its int8 levels k * 2^e."
    for name, p in model.named_parameters():
        k, e = int8_levels(torch.randn(p.shape, generator=g) * std_of(name, p) + shift_of(name))
        p.copy_(k.float() * 2 ** e)


def vae_std(name, p):
    "Default-init-like scales; codebook rows at the scale of the encoder's latents."
    if name.endswith('bias'): return 0.05
    if 'norm' in name: return 0.2                          # GroupNorm gains 1 +- 0.2 (shifted by vae_shift)
    if name == 'quantize.embedding.weight': return 0.5
    return 1 / math.sqrt(p[0].numel())                     # fan-in


def var_std(name, p):
    if name.endswith('scale_mul_1H11'): return 0.3        # log temperatures around log 4 (the shift)
    if name.endswith(('bias', 'q_bias', 'v_bias')): return 0.05
    if name in ('class_emb.weight', 'pos_start', 'pos_1LC', 'lvl_embed.weight') or name.endswith('ada_gss'): return 0.5
    return 1 / math.sqrt(p.shape[-1]) if p.ndim == 2 else 0.05


@torch.no_grad()
def build_vae(OfficialVQVAE, Encoder, Decoder, g):
    vae = narrow_vqvae(OfficialVQVAE, Encoder, Decoder)
    randomize(vae, g, vae_std, lambda name: 1.0 if 'norm' in name and name.endswith('weight') else 0.0)
    return vae


@torch.no_grad()
def build_var(OfficialVAR, vae, g, depth, width, heads, shared_aln, attn_l2_norm):
    var = OfficialVAR(vae, num_classes=N_CLASSES, depth=depth, embed_dim=width, num_heads=heads, shared_aln=shared_aln,
                      attn_l2_norm=attn_l2_norm, patch_nums=PATCH_NUMS, drop_path_rate=0.0, cond_drop_rate=0.0,
                      flash_if_available=False, fused_if_available=False)
    randomize(var, g, var_std, lambda name: math.log(4.0) if name.endswith('scale_mul_1H11') else 0.0)
    return var.eval().requires_grad_(False)


@torch.no_grad()
def sampling_run(var, vae, labels, **kw):
    "One official KV-cached sampling call; returns its tokens per scale (B, l), the final f_hat and the images in [0, 1]."
    tokens, f_hats = [], []
    hook = vae.quantize.embedding.register_forward_hook(lambda m, args, out: tokens.append(args[0].clone()))
    to_img = vae.fhat_to_img
    vae.fhat_to_img = lambda f_hat: (f_hats.append(f_hat.clone()), to_img(f_hat))[1]
    try: images = var.autoregressive_infer_cfg(len(labels), labels, **kw)
    finally: hook.remove(); del vae.fhat_to_img
    return dict(tokens=tokens, f_hat=f_hats[0], images=images, labels=labels, **kw)


def compact_state(model, drop=()) -> dict:
    "The model's state dict, parameters as int8 levels and exponents (exact: they were drawn on those levels), buffers as they are."
    params = dict(model.named_parameters())
    out = {'int8': {}, 'exponent': {}, 'buffers': {}}
    for name, t in model.state_dict().items():
        if name in drop: continue
        if name not in params: out['buffers'][name] = t; continue
        k, e = int8_levels(t)
        assert torch.equal(k.float() * 2 ** e, t), name
        out['int8'][name], out['exponent'][name] = k, e
    return out


@torch.no_grad()
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--official', default=os.environ.get('SAR_REF_OFFICIAL_VAR'),
                    help='folder of a FoundationVision/VAR checkout (or env SAR_REF_OFFICIAL_VAR)')
    ap.add_argument('--out', default=str(Path(__file__).resolve().parents[1] / 'tests' / 'fixtures' / 'official'))
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    if not args.official: ap.error('--official PATH (or SAR_REF_OFFICIAL_VAR) is required')
    torch.set_num_threads(1)
    OfficialVAR, OfficialVQVAE = import_official(args.official)
    from models.basic_vae import Decoder, Encoder         # the official encoder/decoder classes (importable once the above ran)
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)

    vae = build_vae(OfficialVQVAE, Encoder, Decoder, g)
    image = torch.randint(0, 256, (1, 3, IMAGE, IMAGE), generator=g, dtype=torch.uint8)
    x = image.float() / 127.5 - 1
    latents = vae.quant_conv(vae.encoder(x))
    idx_Bl = vae.img_to_idxBl(x)
    out = dict(image=image, latents=latents, tokens=idx_Bl,
               f_hat=vae.quantize.f_to_idxBl_or_fhat(latents, to_fhat=True)[-1],
               decoded=vae.idxBl_to_img(idx_Bl, same_shape=True, last_one=True),
               teacher_forcing=vae.quantize.idxBl_to_var_input(idx_Bl),
               patch_nums=PATCH_NUMS, n_classes=N_CLASSES)

    L = sum(p * p for p in PATCH_NUMS)
    tf_tokens = torch.randint(0, VOCAB, (2, L), generator=g)
    tf_labels = torch.tensor([3, N_CLASSES])               # a class and the null class
    tf_idx = list(tf_tokens.split([p * p for p in PATCH_NUMS], dim=1))
    out['tf_tokens'], out['tf_labels'] = tf_tokens, tf_labels
    out['tf_inputs'] = vae.quantize.idxBl_to_var_input(tf_idx)
    models = {}
    for name, depth, width, heads, shared, l2, sample_kw in (
            ('var', 3, 64, 2, False, True, dict(g_seed=7, cfg=2.5, top_k=20, top_p=0.9)),
            ('var_shared', 2, 64, 1, True, False, dict(g_seed=3, cfg=0.0, top_k=0, top_p=0.0))):
        var = build_var(OfficialVAR, vae, g, depth, width, heads, shared, l2)
        models[name] = var
        out[f'{name}_logits'] = var(tf_labels, out['tf_inputs'])
        out[f'{name}_sample'] = sampling_run(var, vae, torch.tensor([1, 5]), **sample_kw)
    del out['var_shared_sample']['images']                 # its tokens and f_hat suffice (the decoder is checked above)

    commit = subprocess.run(['git', '-C', args.official, 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
    out['official_commit'] = commit or 'unknown'
    dst = Path(args.out)
    dst.mkdir(parents=True, exist_ok=True)
    torch.save(compact_state(vae), dst / 'vqvae.pth')
    for name, var in models.items():                       # the (L, L) mask buffer is a constant the converter ignores: left out
        torch.save(compact_state(var, drop=('attn_bias_for_masking',)), dst / f'{name}.pth')
    torch.save(out, dst / 'outputs.pth')
    for f in sorted(dst.iterdir()): print(f'{f.name:18s} {f.stat().st_size / 2**10:8.1f} KiB')
    counts = [len(set(t.flatten().tolist())) for t in idx_Bl]
    print(f'official commit {out["official_commit"]}; distinct tokens per scale of the image: {counts}')
    for name in models:
        s = out[f'{name}_sample']
        print(f'{name}: logits std {out[f"{name}_logits"].std():.3f}; sampled tokens at 16x16: '
              f'{len(set(s["tokens"][-1].flatten().tolist()))} distinct')


if __name__ == '__main__':
    main()
