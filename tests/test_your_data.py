"Your own images end to end: a colour folder through every console script and through the library, grey and colour round trips, bad input."
import json
import os
import shutil
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import numpy as np
import pytest
import torch
from PIL import Image

from console import run_cli
from sar_ref.data import draw_shapes, load_dataset, to_uint8
from sar_ref.evaluation import load_samples_npz
from sar_ref.msvq import MSVQConfig, MultiScaleVQVAE, scale_schedule
from sar_ref.study import run_demo, save_grid, write_samples_npz
from sar_ref.training import load_checkpoint, load_model
from sar_ref.vqvae import VQVAE, VQVAEConfig

CLASSES = 3          # circle, square, triangle of the drawn set
PER_CLASS = 40


def write_folder(root: Path, size: int = 32, per_class: int = PER_CLASS) -> Path:
    "root/<class>/*.png: three classes of coloured shapes, RGB, `size` px."
    images, labels = draw_shapes(per_class * 12, size, seed=3)
    for c in range(CLASSES):
        folder = root / ('circle', 'square', 'triangle')[c]
        folder.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(to_uint8(images[labels == c][:per_class])):
            Image.fromarray(im.numpy()).save(folder / f'{i:03d}.png')
    return root


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('your_data')
    return dict(os.environ, OMP_NUM_THREADS='1', SAR_REF_CHECKPOINTS=str(tmp / 'ckpts'))


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp('pics') / 'pics')


@pytest.fixture(scope='module')
def cli_run(tmp_path_factory, folder, env):
    "Every training command, sampling and evaluation on the colour folder, with tiny models and a few steps."
    run = tmp_path_factory.mktemp('run')
    data = ['--data', f'folder:{folder}', '--device', 'cpu', '--seed', '0']
    small = ['--steps', '8', '--batch_size', '16']
    run_cli('sar_ref_train_classifier', '--out', run / 'classifier.pt', '--tiny', *small, *data, env=env)
    run_cli('sar_ref_train_vqvae', '--out', run / 'vqvae.pt', '--tiny', *small, *data, env=env)
    run_cli('sar_ref_train_msvq', '--out', run / 'msvq.pt', *small, *data, env=env)      # warm-started from vqvae.pt beside it
    run_cli('sar_ref_train_var', '--out', run / 'var.pt', '--tiny', *small, *data, env=env)
    run_cli('sar_ref_train_fmt', '--out', run / 'fmt_sar_ts.pt', '--tiny', *small, *data, env=env)
    for kind in ('var', 'fmt_sar_ts'):
        run_cli('sar_ref_sample', '--ckpt', run / f'{kind}.pt', '--n', 12, '--out', run / f'{kind}.npz', '--device', 'cpu',
                '--no-progress', env=env)
    res = run_cli('sar_ref_evaluate', '--samples', run / 'var.npz', '--classifier', run / 'classifier.pt', '--out',
                  run / 'var_eval.json', '--device', 'cpu', env=env)
    return run, res.stdout


def test_console_scripts_train_every_model_on_a_colour_folder(cli_run):
    run, _ = cli_run
    clf = load_model(run / 'classifier.pt', kind='classifier')
    assert (clf.cfg.in_channels, clf.cfg.n_classes, clf.cfg.image_size) == (3, CLASSES, 32)
    assert clf.cfg.data.startswith('folder:') and clf.cfg.data.endswith('pics')
    for name in ('vqvae', 'msvq'):
        tok = load_model(run / f'{name}.pt', kind=name)
        assert (tok.cfg.in_channels, tok.cfg.image_size) == (3, 32)
    assert load_model(run / 'msvq.pt').cfg.patch_nums == scale_schedule(8)
    for name in ('var', 'fmt_sar_ts'):
        gen = load_model(run / f'{name}.pt')
        assert gen.cfg.n_classes == CLASSES                                   # the number of classes comes from the data
        extra = load_checkpoint(run / f'{name}.pt')['extra']
        assert extra['class_names'] == ['circle', 'square', 'triangle'] and extra['data'].startswith('folder:')


def test_samples_are_colour_npz_and_evaluate(cli_run):
    run, stdout = cli_run
    for kind in ('var', 'fmt_sar_ts'):
        images, labels = load_samples_npz(run / f'{kind}.npz')
        assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8   # colour: channels last
        assert labels.tolist() == [0, 1, 2] * 4
    rows = json.loads((run / 'var_eval.json').read_text())
    assert rows[0]['n'] == 12 and np.isfinite(rows[0]['fd']) and 0 <= rows[0]['accuracy'] <= 1
    assert rows[1]['method'].startswith('real data (floor') and rows[1]['fd'] >= 0
    assert '| var.npz |' in stdout and 'real data (floor' in stdout


def test_library_api_main_job_on_a_colour_folder(tmp_path, folder, monkeypatch):
    "run_demo on the folder at the tiny budget: every stage, colour samples and grids, the table names the data."
    monkeypatch.setenv('SAR_REF_CHECKPOINTS', str(tmp_path / 'ckpts'))
    torch.set_num_threads(1)
    res = run_demo(tmp_path / 'run', budget='tiny', methods='VAR,SAR-TS', device='cpu', progress=False, data=f'folder:{folder}')
    run = tmp_path / 'run'
    assert [r['key'] for r in res['rows']] == ['var_6', 'sar_ts_8', 'sar_ts_16', 'sar_ts_64', 'ceiling_vqvae', 'ceiling_msvq', 'real']
    with np.load(run / 'samples' / 'var_6.npz') as z:
        assert z['images'].shape == (CLASSES * 4, 32, 32, 3) and sorted(set(z['labels'].tolist())) == [0, 1, 2]
    assert (run / 'grids' / 'var_6.png').is_file() and (run / 'grids' / 'real.png').is_file()
    assert (run / 'results.md').read_text().startswith('pics, budget `tiny`')
    assert json.loads((run / 'run.json').read_text())['data'] == f'folder:{folder.resolve()}'
    with pytest.raises(ValueError, match="holds a run with data="):                    # another dataset: refused, not mixed in
        run_demo(run, budget='tiny', methods='VAR', device='cpu', progress=False, data='shapes')


def test_64px_tokenizer_from_the_command_line(tmp_path, folder, env):
    out = tmp_path / 'vqvae64.pt'
    run_cli('sar_ref_train_vqvae', '--data', f'folder:{folder}', '--image_size', 64, '--tiny', '--steps', 3, '--batch_size', 8,
            '--out', out, '--device', 'cpu', env=env)
    tok = load_model(out, kind='vqvae')
    assert (tok.cfg.image_size, tok.cfg.in_channels, tok.cfg.latent_size) == (64, 3, 8)
    x = load_dataset(f'folder:{folder}', 64).test_images[:2]
    assert tok.decode(tok.encode(x)).shape == (2, 3, 64, 64)


@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('size', [32, 64])
def test_grey_and_colour_round_trips(tmp_path, channels, size):
    "Tokenizers encode and decode both; npz files and grids keep the channels."
    x = torch.rand(4, channels, size, size) * 2 - 1
    for model in (VQVAE(VQVAEConfig.for_images(size, channels, tiny=True)), MultiScaleVQVAE(MSVQConfig.for_images(size, channels, tiny=True))):
        assert model.eval().decode(model.encode(x)).shape == x.shape
    u8, labels = to_uint8(x), torch.arange(4)
    images, back = load_samples_npz(write_samples_npz(tmp_path / 's.npz', u8, labels))
    assert images.shape == ((4, size, size) if channels == 1 else (4, size, size, 3)) and (images == u8.numpy()).all()
    assert back.tolist() == [0, 1, 2, 3]
    assert save_grid(u8, 2, tmp_path / 'grid.png', class_names=('a', 'b')).is_file()


def test_scale_rule():
    assert scale_schedule(16) == (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)                 # VAR's 256 px schedule
    for side in (2, 4, 8, 12, 16, 32, 64):
        p = scale_schedule(side)
        assert p[0] == 1 and p[-1] == side and all(a < b for a, b in zip(p, p[1:]))


def _fails(res, *needles):
    assert res.returncode == 2 and 'Traceback' not in res.stderr, res.stderr[-2000:]
    for n in needles: assert n in res.stderr, res.stderr


def test_bad_data_is_one_clear_line(tmp_path, folder, env):
    out = tmp_path / 'never.pt'
    cmd = ['--out', out, '--tiny', '--steps', 2, '--device', 'cpu']
    _fails(run_cli('sar_ref_train_vqvae', '--data', 'imagenet', *cmd, env=env, check=False), "--data='imagenet'", 'expected one of')
    _fails(run_cli('sar_ref_train_vqvae', '--data', f'folder:{tmp_path / "nothere"}', *cmd, env=env, check=False), 'no such folder')
    (tmp_path / 'empty').mkdir()
    _fails(run_cli('sar_ref_train_vqvae', '--data', f'folder:{tmp_path / "empty"}', *cmd, env=env, check=False), 'no images')
    notes = write_folder(tmp_path / 'notes', per_class=3)
    (notes / 'circle' / 'readme.txt').write_text('not an image')
    _fails(run_cli('sar_ref_train_vqvae', '--data', f'folder:{notes}', *cmd, env=env, check=False), 'readme.txt', 'not images')
    (notes / 'circle' / 'readme.txt').unlink()
    (notes / 'circle' / 'broken.png').write_bytes(b'not a png')
    _fails(run_cli('sar_ref_train_vqvae', '--data', f'folder:{notes}', *cmd, env=env, check=False), 'broken.png', 'not a readable image')
    _fails(run_cli('sar_ref_train_vqvae', '--data', f'folder:{folder}', '--image_size', 30, *cmd, env=env, check=False),
           'image_size=30', 'multiple of 4')
    _fails(run_cli('sar_ref_train_vqvae', '--data', 'shapes', '--channels', 2, *cmd, env=env, check=False), '--channels=2')
    flat = tmp_path / 'flat'
    shutil.copytree(folder / 'circle', flat)
    _fails(run_cli('sar_ref_train_classifier', '--data', f'folder:{flat}', *cmd, env=env, check=False), 'one class only')
    _fails(run_cli('sar_ref_train_classifier', '--data', f'folder:{folder}', '--n_train', 200, *cmd, env=env, check=False),
           '--n_train=200')
    assert not out.exists() and not list(tmp_path.glob('never*'))                    # nothing half-written


def test_a_tokenizer_for_other_images_is_refused(tmp_path, folder, env, cli_run):
    run, _ = cli_run
    grey = tmp_path / 'grey_msvq.pt'
    run_cli('sar_ref_train_msvq', '--init_from', 'none', '--tiny', '--data', 'shapes', '--channels', 1, '--steps', 2,
            '--batch_size', 8, '--n_train', 64, '--out', grey, '--device', 'cpu', env=env)
    res = run_cli('sar_ref_train_var', '--tokenizer', grey, '--data', f'folder:{folder}', '--tiny', '--steps', 2,
                  '--out', tmp_path / 'var.pt', '--device', 'cpu', env=env, check=False)
    _fails(res, '--tokenizer', 'holds 3x32x32 images', 'takes 1x32x32')
    assert not (tmp_path / 'var.pt').exists()
    res = run_cli('sar_ref_evaluate', '--samples', run / 'var.npz', '--classifier', run / 'classifier.pt', '--data', 'shapes',
                  '--channels', 1, '--device', 'cpu', env=env, check=False)
    _fails(res, "--data='shapes'", 'takes 3x32x32')
