"""Side by side: sar_ref's VAR against the official VAR code (github FoundationVision/VAR) on one configuration.

The official code is NOT part of this project: fetch it yourself and pass its folder with `--official PATH`
(or the environment variable SAR_REF_OFFICIAL_VAR). It is imported at run time, unmodified; two shims make it
import on a machine without its extras: a stub `huggingface_hub` (only its hub mixin class is imported) and
`flash_if_available=False, fused_if_available=False` (plain PyTorch attention, no flash-attn / xformers).

Both models: depth 6, width 384, 6 heads, patch_nums (1, 2, 3, 4, 6, 8), vocabulary 512, 10 classes, cosine
attention (attn_l2_norm), batch 16, VAR's initialisation. Both read the same tokens and labels, use the same AdamW
(betas 0.9/0.95, weight decay 0.05), and decode with the same (sar_ref) decoder, so what differs is the transformer
code. Timings are interleaved (ours, theirs, theirs, ours, ...) and reported as medians over repeats; the ratio
ours / theirs is what to read on a shared machine.

    python benchmarks/bench_var_official.py --official /path/to/VAR [--device cuda] [--repeats 10]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE
from sar_ref.var import VAR, VARConfig, generate

PATCH_NUMS, VOCAB, DEPTH, WIDTH, HEADS, CLASSES = (1, 2, 3, 4, 6, 8), 512, 6, 384, 6, 10


def import_official(path: str):
    "Import the official VAR and VQVAE classes from a checkout at `path`, with the shims described above."
    if not os.path.isfile(os.path.join(path, 'models', 'var.py')):
        sys.exit(f"--official {path!r}: expected a checkout of github FoundationVision/VAR (models/var.py not found)")
    if 'huggingface_hub' not in sys.modules:
        try: import huggingface_hub  # noqa: F401
        except ImportError:
            stub = types.ModuleType('huggingface_hub')
            stub.PyTorchModelHubMixin = type('PyTorchModelHubMixin', (), {})
            sys.modules['huggingface_hub'] = stub
    sys.path.insert(0, path)
    from models.var import VAR as OfficialVAR
    from models.vqvae import VQVAE as OfficialVQVAE
    return OfficialVAR, OfficialVQVAE


def build(args, device):
    "Our tokenizer + VAR, and the official VAR over an official VQVAE shell sharing our codebook width."
    OfficialVAR, OfficialVQVAE = import_official(args.official)
    torch.manual_seed(0)
    tok = MultiScaleVQVAE(MSVQConfig(vocab_size=VOCAB, patch_nums=PATCH_NUMS)).to(device).eval()
    ours = VAR(VARConfig(vocab_size=VOCAB, z_dim=tok.cfg.z_dim, patch_nums=PATCH_NUMS, n_classes=CLASSES,
                         depth=DEPTH, width=WIDTH, n_heads=HEADS), tok).to(device)
    # the official VQVAE only lends its quantiser (codebook + Phi convs) to VAR; its 3-channel decoder is replaced by ours
    vae = OfficialVQVAE(vocab_size=VOCAB, z_channels=tok.cfg.z_dim, ch=32, test_mode=True, share_quant_resi=4,
                        v_patch_nums=PATCH_NUMS).to(device)
    vae.fhat_to_img = lambda f_hat: tok.decode_f_hat(f_hat)
    theirs = OfficialVAR(vae, num_classes=CLASSES, depth=DEPTH, embed_dim=WIDTH, num_heads=HEADS, attn_l2_norm=True,
                         patch_nums=PATCH_NUMS, drop_path_rate=0.0, flash_if_available=False,
                         fused_if_available=False).to(device)
    theirs.init_weights(init_adaln=0.5, init_adaln_gamma=1e-5, init_head=0.02, init_std=-1)
    return tok, ours, vae, theirs


def timed(fn, device) -> tuple[float, float]:
    "Wall-clock and process CPU seconds of one call."
    if device.type == 'cuda': torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    if device.type == 'cuda': torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def parse_args(description: str, argv=None) -> argparse.Namespace:
    "The options both side-by-side scripts take; sets the torch thread count."
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument('--official', default=os.environ.get('SAR_REF_OFFICIAL_VAR'),
                    help='folder of a FoundationVision/VAR checkout (or env SAR_REF_OFFICIAL_VAR)')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--repeats', type=int, default=10, help='timed repeats per measurement (after --warmup)')
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--cfg', type=float, default=1.5, help='guidance scale for sampling')
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    args = ap.parse_args(argv)
    if not args.official: ap.error('--official PATH (or SAR_REF_OFFICIAL_VAR) is required')
    if args.threads: torch.set_num_threads(args.threads)
    return args


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv)
    device = torch.device(args.device)
    tok, ours, vae, theirs = build(args, device)

    n_ours, n_theirs = ours.n_params(), sum(p.numel() for p in theirs.parameters())
    print(f'parameters: ours {n_ours:,}  official {n_theirs:,}  ratio {n_ours / n_theirs:.4f}')
    if abs(n_ours / n_theirs - 1) > 0.05: sys.exit('parameter counts differ by more than 5%: not the same model')

    B, g = args.batch, torch.Generator().manual_seed(0)
    L = sum(p * p for p in PATCH_NUMS)
    tokens = torch.randint(0, VOCAB, (B, L), generator=g).to(device)          # (B, L), the same for both
    labels = torch.randint(0, CLASSES, (B,), generator=g).to(device)
    idx_Bl = [t.flatten(1) for t in tok.unflatten_tokens(tokens)]             # the official list-of-(B, l) format
    opt_kw = dict(lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    opt_ours = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], **opt_kw)
    opt_theirs = torch.optim.AdamW([p for p in theirs.parameters() if p.requires_grad], **opt_kw)
    ours.train(); theirs.train()

    def train_ours():
        opt_ours.zero_grad(set_to_none=True)
        loss, _ = ours.compute_loss((tokens, labels))        # teacher-forcing inputs + forward + CE (+ accuracy metrics)
        loss.backward()
        opt_ours.step()

    def train_theirs():                                      # as in the official trainer.train_step
        opt_theirs.zero_grad(set_to_none=True)
        x_tf = vae.quantize.idxBl_to_var_input(idx_Bl)
        logits = theirs(labels, x_tf)
        loss = F.cross_entropy(logits.view(-1, VOCAB), tokens.view(-1))
        loss.backward()
        opt_theirs.step()

    sample_labels = labels

    def sample_ours():
        ours.eval()
        generate(ours, sample_labels, cfg=args.cfg, generator=torch.Generator(device).manual_seed(0), kv_cache=False)

    def sample_theirs():
        theirs.eval()
        theirs.autoregressive_infer_cfg(B, sample_labels, g_seed=0, cfg=args.cfg, top_k=0, top_p=0.0)

    results = {}
    for name, pair in (('train step (fwd+bwd+AdamW)', (train_ours, train_theirs)),
                       ('sampling call (K steps, cfg)', (sample_ours, sample_theirs))):
        times = ([], [])
        for r in range(args.warmup + args.repeats):
            order = (0, 1) if r % 2 == 0 else (1, 0)         # interleave, alternating who goes first
            for i in order:
                t = timed(pair[i], device)
                if r >= args.warmup: times[i].append(t)
        for c, clock in enumerate(('wall', 'cpu')):
            mo, mt = (statistics.median(t[c] for t in ts) for ts in times)
            results[name, clock] = (mo, mt)
            print(f'{name:30s} {clock:4s} median ours {mo * 1e3:9.1f} ms   official {mt * 1e3:9.1f} ms   '
                  f'ours/official {mo / mt:.3f}   (min {min(t[c] for t in times[0]) * 1e3:.1f} / '
                  f'{min(t[c] for t in times[1]) * 1e3:.1f} ms)', flush=True)
    print(f'threads {torch.get_num_threads()}; cpu = process CPU time (all threads), robust to a shared machine with 1 thread.')
    print('note: the official sampler uses a KV cache; ours here is the plain (uncached) reference sampler.')
    return results


if __name__ == '__main__':
    main()
