"""sar_ref computes what the official VAR code computes: fixtures written by benchmarks/make_official_fixtures.py (small
official models with random weights, their inputs and outputs) are loaded through the public loaders and compared.

Tolerances (float32 on the CPU): every token equal; every value within 1e-5 of the largest official value of the same
quantity (max |ours - official| / max |official|), except the image decoded from tokens, 3e-5 (our Phi conv reads the
codes channels-last, the official code contiguous: a few last-place differences in f_hat that the random decoder
amplifies; the decoder alone is held to 1e-5). Measured: see notebook 12 and benchmarks/RESULTS.md."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sar_ref.data import to_uint8
from sar_ref.fmt import FMT, FMTConfig
from sar_ref.msvq import VAR_PATCH_NUMS, MSVQConfig, MultiScaleVQVAE
from sar_ref.official import (OFFICIAL_BUFFERS, check_official_args, fixture_state_dict, load_official, load_official_var,
                              load_official_vqvae, official_phi_index, official_vqvae_names, official_var_name)
from sar_ref.var import VAR, VARConfig, generate
from sar_ref.vqvae import VQVAE, VQVAEConfig

FIXTURES = Path(__file__).parent / 'fixtures' / 'official'
VALUE_TOL, IMAGE_TOL = 1e-5, 3e-5


def rel_diff(ours, theirs) -> float:
    "max |ours - theirs| / max |theirs|."
    return ((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max()).item()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    "The fixture state dicts as ordinary float32 .pth files, as a downloaded file would be."
    tmp = tmp_path_factory.mktemp('official')
    for name in ('vqvae', 'var', 'var_shared'):
        torch.save(fixture_state_dict(torch.load(FIXTURES / f'{name}.pth', weights_only=True)), tmp / f'{name}.pth')
    return tmp


@pytest.fixture(scope='module')
def ref():
    return torch.load(FIXTURES / 'outputs.pth', weights_only=True)


@pytest.fixture(scope='module')
def models(files):
    tok = load_official_vqvae(files / 'vqvae.pth')
    return tok, load_official_var(files / 'var.pth', tok), load_official_var(files / 'var_shared.pth', tok)


def test_fixtures_are_small_and_in_the_official_layout(files):
    assert sum(f.stat().st_size for f in FIXTURES.iterdir()) < 5 * 2**20
    tok = load_official_vqvae(files / 'vqvae.pth')
    official = torch.load(files / 'vqvae.pth', weights_only=True)
    names = official_vqvae_names(tok)                 # every official tensor is used once, every one of ours is filled
    assert sorted(names.values()) == sorted(k for k in official if not OFFICIAL_BUFFERS.match(k))
    assert set(names) == set(tok.state_dict()) - {'quantizer.steps_unused'}
    var = torch.load(files / 'var.pth', weights_only=True)
    assert 'blocks.0.attn.q_bias' in var and 'blocks.0.attn.zero_k_bias' in var and 'blocks.0.attn.mat_qkv.bias' not in var


def test_tokenizer_config_read_from_the_shapes(models):
    tok, _, _ = models
    c = tok.cfg
    assert (c.channels, c.res_blocks, c.z_dim, c.vocab_size, c.image_size) == ((32, 32, 64, 64), (2,) * 4, 16, 64, 128)
    assert (c.layout, c.attention, c.norm_groups, c.norm_eps, c.n_convs, c.patch_nums) == ('var', True, 32, 1e-6, 4, VAR_PATCH_NUMS[256])


def test_tokenizer_computes_the_official_numbers(models, ref):
    tok, _, _ = models
    with torch.no_grad():
        x = ref['image'].float() / 127.5 - 1
        latents = tok.encoder(x)
        assert rel_diff(latents, ref['latents']) <= VALUE_TOL
        for ours, theirs in zip(tok.encode(x), ref['tokens']): assert torch.equal(ours.flatten(1), theirs)   # every token
        tokens = [t.reshape(1, p, p) for t, p in zip(ref['tokens'], tok.patch_nums)]
        assert rel_diff(tok.f_hat_from_tokens(tokens), ref['f_hat']) <= VALUE_TOL
        assert rel_diff(tok.decode_f_hat(ref['f_hat']), ref['decoded']) <= VALUE_TOL
        assert rel_diff(tok.decode(tokens), ref['decoded']) <= IMAGE_TOL
        assert rel_diff(tok.teacher_forcing_inputs(tokens), ref['teacher_forcing']) <= VALUE_TOL


@pytest.mark.parametrize('name', ['var', 'var_shared'])
def test_transformer_logits_with_teacher_forcing(models, ref, name):
    tok, var, var_shared = models
    model = {'var': var, 'var_shared': var_shared}[name]
    with torch.no_grad():
        x_tf = model.teacher_forcing_inputs(ref['tf_tokens'])
        assert rel_diff(x_tf, ref['tf_inputs']) <= VALUE_TOL
        logits = model(ref['tf_labels'], x_tf)
    assert logits.shape == ref[f'{name}_logits'].shape
    assert rel_diff(logits, ref[f'{name}_logits']) <= VALUE_TOL


@pytest.mark.parametrize('name', ['var', 'var_shared'])
@pytest.mark.parametrize('kv_cache', [True, False])
def test_sampling_run_draws_the_official_tokens(models, ref, name, kv_cache):
    tok, var, var_shared = models
    model, s = {'var': var, 'var_shared': var_shared}[name], ref[f'{name}_sample']
    toks, images = generate(model, s['labels'], cfg=s['cfg'], cfg_schedule='linear', top_k=s['top_k'],
                            top_p=s['top_p'] if s['top_p'] > 0 else 1.0,           # the official 0 (off) is our 1
                            generator=torch.Generator().manual_seed(s['g_seed']), kv_cache=kv_cache)
    assert len(toks) == len(s['tokens']) == 10
    for ours, theirs in zip(toks, s['tokens']): assert torch.equal(ours.flatten(1), theirs)
    assert rel_diff(tok.f_hat_from_tokens(toks), s['f_hat']) <= VALUE_TOL
    if 'images' in s: assert rel_diff((images + 1) / 2, s['images']) <= VALUE_TOL


def test_released_sizes_and_defaults_unchanged():
    with torch.device('meta'):
        assert VAR(VARConfig.official(16)).n_params() == 310_283_520              # the official d16's count
        assert sum(p.numel() for p in MultiScaleVQVAE(MSVQConfig.official()).parameters()) == 108_948_355
        tok = MultiScaleVQVAE(MSVQConfig())
        h = hashlib.sha1()
        for m in (VQVAE(VQVAEConfig()), tok, VAR(VARConfig(), tok), FMT(FMTConfig())):
            for k, v in m.state_dict().items(): h.update(f'{k}:{tuple(v.shape)};'.encode())
    assert h.hexdigest()[:16] == 'b11c16b84507fb96'   # the default models' keys and shapes, as before the official options
    assert official_phi_index(10, 4) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert official_var_name('blocks.3.attn.log_temperature') == 'blocks.3.attn.scale_mul_1H11'
    assert official_var_name('head.out.weight') == 'head.weight' and official_var_name('head.ada_lin.1.bias') == 'head_nm.ada_lin.1.bias'


class NotATensor:
    "Anything pickled that is not a tensor: weights_only=True refuses to build it."


def test_bad_files_and_arguments(files, models, tmp_path):
    tok = models[0]
    with pytest.raises(ValueError, match=r"holds a depth-3 VAR transformer \(var_dN.pth\); expected the tokenizer vae_ch160v4096z32.pth"):
        load_official_vqvae(files / 'var.pth')
    with pytest.raises(ValueError, match=r"holds the tokenizer \(vae_ch160v4096z32.pth\); expected a VAR transformer"):
        load_official_var(files / 'vqvae.pth', tok)
    with pytest.raises(ValueError, match=r"depth=16: .* holds a depth-3 VAR"): load_official_var(files / 'var.pth', tok, depth=16)
    with pytest.raises(TypeError, match="vqvae: expected a MultiScaleVQVAE"): load_official_var(files / 'var.pth', 'vae.pth')
    with pytest.raises(TypeError, match="path: expected a file path"): load_official_vqvae(torch.zeros(1))
    with pytest.raises(ValueError, match="no such file"): load_official_vqvae(tmp_path / 'vae_ch160v4096z32.pth')
    torch.save({'x': NotATensor()}, tmp_path / 'pickle.pth')
    with pytest.raises(ValueError, match="not a PyTorch weights file"): load_official_vqvae(tmp_path / 'pickle.pth')
    torch.save([torch.zeros(1)], tmp_path / 'list.pth')
    with pytest.raises(ValueError, match="expected a state dict"): load_official_vqvae(tmp_path / 'list.pth')
    (tmp_path / 'text.pth').write_text('not weights')
    with pytest.raises(ValueError, match="not a PyTorch weights file"): load_official_var(tmp_path / 'text.pth', tok)
    torch.save({'weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match="not an official VAR transformer"): load_official_var(tmp_path / 'other.pth', tok)
    sd = torch.load(files / 'var.pth', weights_only=True)
    torch.save({k: v for k, v in sd.items() if k != 'head.bias'}, tmp_path / 'var.pth')
    with pytest.raises(ValueError, match=r"1 missing tensors, e.g. \['head.bias'\]"): load_official_var(tmp_path / 'var.pth', tok)
    torch.save({**sd, 'blocks.0.attn.k_bias': torch.zeros(64)}, tmp_path / 'var.pth')
    with pytest.raises(ValueError, match=r"unexpected tensors, e.g. \['blocks.0.attn.k_bias'\]"): load_official_var(tmp_path / 'var.pth', tok)
    torch.save({**sd, 'blocks.0.attn.proj.weight': torch.zeros(64, 32)}, tmp_path / 'var.pth')
    with pytest.raises(ValueError, match=r"blocks.0.attn.proj.weight has shape \(64, 32\), expected \(64, 64\)"):
        load_official_var(tmp_path / 'var.pth', tok)
    torch.save(sd, tmp_path / 'var_d20.pth')
    with pytest.raises(ValueError, match="the name says depth 20 but the weights have depth 3"): load_official_var(tmp_path / 'var_d20.pth', tok)
    vae = torch.load(files / 'vqvae.pth', weights_only=True)
    torch.save({k: v for k, v in vae.items() if not k.startswith('quantize.quant_resi.qresi_ls.3.')}, tmp_path / 'vae3.pth')
    with pytest.raises(ValueError, match="3 shared Phi convs"): load_official_vqvae(tmp_path / 'vae3.pth')
    other = load_official_vqvae(files / 'vqvae.pth', patch_nums=(1, 2, 4, 8, 16))
    with pytest.raises(ValueError, match="vqvae: its tokens=341 does not fit"): load_official_var(files / 'var.pth', other)


def test_load_official_picks_the_resolution(files):
    model = load_official(files / 'vqvae.pth', files / 'var.pth')
    assert model.tokenizer.cfg.image_size == 128 and model.cfg.patch_nums == VAR_PATCH_NUMS[256]
    assert model.tokenizer.training is False and model.cfg.key_bias is False


def run_official_cli(tmp_path, *args):
    "The console script's entry point in a fresh interpreter, as `sar_ref_official ARGS` runs it once installed."
    entry = tmp_path / 'sar_ref_official.py'
    entry.write_text('from sar_ref.official import sar_ref_official\nsar_ref_official()\n')
    return subprocess.run([sys.executable, str(entry), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))


def test_console_script_samples_the_official_images(files, ref, tmp_path):
    s = ref['var_sample']
    res = run_official_cli(tmp_path, '--vae', files / 'vqvae.pth', '--var', files / 'var.pth', '--classes', '1,5', '--per_class', 1,
                           '--out', tmp_path / 'out', '--cfg', s['cfg'], '--top_k', s['top_k'], '--top_p', s['top_p'],
                           '--seed', s['g_seed'], '--device', 'cpu', '--no-progress')
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith('wrote 2 images of (128, 128, 3)')
    with np.load(tmp_path / 'out' / 'samples.npz') as z:
        images, labels = torch.from_numpy(z['images']), z['labels']
    assert labels.tolist() == [1, 5] and images.dtype == torch.uint8
    assert (images.int() - to_uint8(s['images'] * 2 - 1).int()).abs().max() <= 1    # the official images, to the uint8 level
    assert sorted(p.name for p in (tmp_path / 'out').glob('*.png')) == ['00000_class1.png', '00001_class5.png']


def test_console_script_bad_arguments(files, tmp_path):
    res = run_official_cli(tmp_path, '--var', files / 'var.pth')
    assert res.returncode == 2 and 'sar_ref_official: error: --vae: required' in res.stderr
    res = run_official_cli(tmp_path, '--vae', files / 'var.pth', '--var', files / 'var.pth', '--out', tmp_path / 'out')
    assert res.returncode == 2 and "--vae='" in res.stderr and 'holds a depth-3 VAR transformer' in res.stderr
    with pytest.raises(ValueError, match=r"--classes='3,10': expected class ids in 0..9"):
        check_official_args(files / 'vqvae.pth', files / 'var.pth', '3,10', 1, 'o', 1.5, 0, 1.0, 0, 'cpu', 8)
    with pytest.raises(ValueError, match=r"--top_p=0: expected a value in \(0, 1\]"):
        check_official_args(files / 'vqvae.pth', files / 'var.pth', '3', 1, 'o', 1.5, 0, 0, 0, 'cpu', 8)
    with pytest.raises(ValueError, match="--top_k=65: expected at most the vocabulary, 64"):
        check_official_args(files / 'vqvae.pth', files / 'var.pth', '3', 1, 'o', 1.5, 65, 1.0, 0, 'cpu', 8)
