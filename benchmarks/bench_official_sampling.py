"""Sampling VAR d16 on the CPU: sar_ref's KV-cached sampler against the official code's, on the same random weights.

The official code (github FoundationVision/VAR) is NOT part of this project: pass a checkout with `--official PATH` (or
SAR_REF_OFFICIAL_VAR); it is imported at run time with the shims of `benchmarks/bench_var_official.py`. The script
builds the official VQVAE of the release (vae_ch160v4096z32 shapes: width 160, V = 4096, d = 32, ten scales) and an
official VAR d16 (width 1024, 16 heads, 310M parameters, cosine attention) with random weights (the official
initialisation), converts both state dicts into sar_ref modules with `sar_ref.official`, checks that the two samplers
draw the same tokens, then times one sampling call of each (the ten scales with classifier-free guidance 1.5, top-k 900,
top-p 0.96, and the 256 px decoding), interleaved (the order alternates every round), medians over repeats.

    python benchmarks/bench_official_sampling.py --official /path/to/VAR [--batch 1] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_var_official import import_official   # noqa: E402  (the official-code import with its shims)

from sar_ref.msvq import VAR_PATCH_NUMS  # noqa: E402
from sar_ref.official import convert_official_var, convert_official_vqvae  # noqa: E402
from sar_ref.var import generate  # noqa: E402

DEPTH, CFG, TOP_K, TOP_P = 16, 1.5, 900, 0.96


def build(path: str, seed: int = 0):
    "The official VQVAE and VAR d16 with random weights, and the same weights in sar_ref's modules."
    OfficialVAR, OfficialVQVAE = import_official(path)
    torch.manual_seed(seed)
    pn = VAR_PATCH_NUMS[256]
    vae = OfficialVQVAE(vocab_size=4096, z_channels=32, ch=160, test_mode=True, share_quant_resi=4, v_patch_nums=pn)
    theirs = OfficialVAR(vae, num_classes=1000, depth=DEPTH, embed_dim=64 * DEPTH, num_heads=DEPTH, attn_l2_norm=True,
                         patch_nums=pn, drop_path_rate=0.0, flash_if_available=False, fused_if_available=False)
    theirs.init_weights(init_adaln=0.5, init_adaln_gamma=1e-5, init_head=0.02, init_std=-1)
    theirs.eval()
    tok = convert_official_vqvae(vae.state_dict())
    ours = convert_official_var({k: v for k, v in theirs.state_dict().items()}, tok)
    return vae, theirs, ours


def timed(fn) -> tuple[float, float, object]:
    "Wall-clock and process CPU seconds of one call, and its result."
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--official', default=os.environ.get('SAR_REF_OFFICIAL_VAR'),
                    help='folder of a FoundationVision/VAR checkout (or env SAR_REF_OFFICIAL_VAR)')
    ap.add_argument('--batch', type=int, default=1, help='images per call (x2 rows for guidance)')
    ap.add_argument('--repeats', type=int, default=3, help='timed calls of each sampler (after --warmup)')
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    args = ap.parse_args(argv)
    if not args.official: ap.error('--official PATH (or SAR_REF_OFFICIAL_VAR) is required')
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    vae, theirs, ours = build(args.official)
    labels = torch.arange(args.batch) * 97 % 1000
    cache = ours.make_cache()                                            # reused by every call, as a sampling loop would

    def run_ours(seed=0):
        toks, images = generate(ours, labels, cfg=CFG, top_k=TOP_K, top_p=TOP_P, generator=torch.Generator().manual_seed(seed),
                                kv_cache=cache)
        return toks, (images + 1) / 2

    def run_theirs(seed=0):
        drawn = []
        hook = vae.quantize.embedding.register_forward_hook(lambda m, a, o: drawn.append(a[0].clone()))
        try: images = theirs.autoregressive_infer_cfg(args.batch, labels, g_seed=seed, cfg=CFG, top_k=TOP_K, top_p=TOP_P)
        finally: hook.remove()
        return drawn, images

    (toks, img_ours), (drawn, img_theirs) = run_ours(), run_theirs()    # the same draws, the same images
    same = all(torch.equal(a.flatten(1), b) for a, b in zip(toks, drawn))
    print(f'parameters: ours {ours.n_params():,}  official {sum(p.numel() for p in theirs.parameters()):,}; '
          f'tokens identical: {same}; images max |diff| {(img_ours - img_theirs).abs().max().item():.2e}', flush=True)

    samplers = {'ours (KV cache)': run_ours, 'official': run_theirs}
    names, times = list(samplers), {n: [] for n in samplers}
    for r in range(args.warmup + args.repeats):
        for n in (names if r % 2 == 0 else names[::-1]):                 # alternate who goes first
            wall, cpu, _ = timed(samplers[n])
            if r >= args.warmup: times[n].append((wall, cpu))
            print(f'  round {r} {n:16s} wall {wall:7.2f} s  cpu {cpu:7.2f} s', flush=True)
    print(f'{args.threads} thread(s), batch {args.batch} (x2 for guidance {CFG}), top-k {TOP_K}, top-p {TOP_P}, '
          f'{args.repeats} repeats after {args.warmup} warm-up round(s); one call = 10 scales + 256 px decoding')
    for c, clock in enumerate(('wall', 'cpu')):
        med = {n: statistics.median(t[c] for t in times[n]) for n in names}
        print(f"{clock:4s} median s: " + '   '.join(f'{n} {med[n]:7.2f}' for n in names)
              + f"   | ours/official {med['ours (KV cache)'] / med['official']:.3f}")


if __name__ == '__main__':
    main()
