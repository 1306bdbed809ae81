"The console scripts from the outside: the main job end to end, resume after a kill, sampling to npz, bad arguments."
import json
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from console import run_cli, script
from sar_ref.cli import sar_ref_demo, sar_ref_sample, sar_ref_train_fmt
from sar_ref.evaluation import real_features
from sar_ref.study import ROWS, STAGES, Budget, measure_row
from sar_ref.training import load_checkpoint, load_model

ARTEFACTS = ['run.json', 'stages.json', 'metrics.json', 'results.md', 'results.csv']


def cli_env(tmp):
    "One thread (so runs repeat bit for bit) and a private checkpoint_dir()."
    return dict(os.environ, OMP_NUM_THREADS='1', SAR_REF_CHECKPOINTS=str(tmp / 'shared_ckpts'))


def demo(out, env, *args, **kw):
    return run_cli('sar_ref_demo', '--budget', 'tiny', '--out', out, '--device', 'cpu', '--no-progress', *args, env=env, **kw)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A finished tiny main job (all methods), its wall time and stdout."
    tmp = tmp_path_factory.mktemp('cli')
    t0 = time.perf_counter()
    res = demo(tmp / 'run', cli_env(tmp))
    return tmp, tmp / 'run', time.perf_counter() - t0, res.stdout


def test_demo_writes_every_artefact(tiny_run):
    _, run, _, stdout = tiny_run
    for name in ARTEFACTS + [s.ckpt for s in STAGES]: assert (run / name).is_file(), name
    for row in ROWS:
        with np.load(run / 'samples' / f'{row.key}.npz') as z:
            assert z['images'].dtype == np.uint8 and z['images'].shape == (40, 32, 32)
            assert z['labels'].dtype == np.int64 and sorted(set(z['labels'].tolist())) == list(range(10))
        png = run / 'grids' / f'{row.key}.png'
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (run / 'grids' / 'real.png').is_file()
    metrics = json.loads((run / 'metrics.json').read_text())
    assert metrics['budget'] == 'tiny' and metrics['sampler'] == 'kv_cache'
    assert set(metrics['stages']) == {s.name for s in STAGES}
    methods = [r['method'] for r in metrics['rows']]
    assert methods == ['VAR', 'AR', 'MAR-like', 'MAR-like', 'SAR-TS', 'SAR-TS', 'SAR-TS', 'VQ-VAE reconstructions (ceiling)',
                       'multi-scale reconstructions (ceiling)', 'real data (floor)']
    assert [r['steps'] for r in metrics['rows']] == [6, 64, 8, 16, 8, 16, 64, None, None, None]
    by = {r['key']: r for r in metrics['rows']}                  # the ceilings are measured: neither the floor nor each other
    assert len({by[k]['fd'] for k in ('ceiling_vqvae', 'ceiling_msvq', 'real')}) == 3
    for r in metrics['rows']:
        assert r['n'] == 40 and np.isfinite(r['fd']) and 0 <= r['accuracy'] <= 1
        assert 0 <= r['precision'] <= 1 and 0 <= r['recall'] <= 1
    table = (run / 'results.md').read_text()
    for header in ('method', 'parameters', 's/image', 'device', 'FD', 'accuracy', 'precision', 'recall', '| n |'):
        assert header in table
    assert table.count('| SAR-TS |') == 3 and '| real data (floor) |' in table and '| VAR | 6 |' in table
    assert table.split('\n\n', 1)[1].strip() in stdout                          # the table is printed
    csv_lines = (run / 'results.csv').read_text().splitlines()
    assert csv_lines[0].startswith('method,steps,parameters,seconds_per_image,device,sampler,fd,accuracy') and len(csv_lines) == 11


def test_rerun_skips_finished_stages(tiny_run):
    tmp, run, first_seconds, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in run.glob('*.pt')}
    t0 = time.perf_counter()
    res = demo(run, cli_env(tmp))
    assert time.perf_counter() - t0 < first_seconds / 2
    assert res.stdout.count('up to date, skipped') == len(STAGES)
    assert {p: p.stat().st_mtime_ns for p in run.glob('*.pt')} == before
    bad = demo(run, cli_env(tmp), '--seed', '1', check=False)                  # another seed: refused, not mixed
    assert bad.returncode == 2 and 'holds a run with seed=0, not seed=1' in bad.stderr


def weights(path):
    ckpt = load_checkpoint(path)
    return ckpt['model'], ckpt['ema']


def test_table_over_seeds(tiny_run):
    "sar_ref_table: the rows two runs share, each metric as mean ± std."
    tmp, run, _, _ = tiny_run
    env = cli_env(tmp)
    demo(tmp / 'seed1', env, '--seed', '1', '--methods', 'VAR')
    res = run_cli('sar_ref_table', '--runs', f'{run},{tmp / "seed1"}', '--out', tmp / 'table.md', env=env)
    rows = [line for line in res.stdout.splitlines() if line.startswith('| ')][1:]
    assert [r.split(' | ')[0] for r in rows] == ['| VAR', '| multi-scale reconstructions (ceiling)', '| real data (floor)']
    assert all(r.count('±') == 4 for r in rows[1:]) and rows[0].count('±') == 5          # FD, accuracy, precision, recall (+ time)
    assert (tmp / 'table.md').read_text().startswith('Mean ± standard deviation over 2 runs')


def test_a_recipe_s_filters_reach_the_draw_and_its_record(tiny_run):
    "A recipe's temperature / top-k / top-p are what measure_row samples with, and they are recorded beside the guidance."
    tmp, run, _, _ = tiny_run
    copy = tmp / 'filtered'
    shutil.copytree(run, copy)
    clf = load_model(copy / 'classifier.pt', kind='classifier')
    feats = real_features(classifier=clf)
    row = next(r for r in ROWS if r.method == 'VAR')
    plain, cold = (measure_row(row, copy, Budget('t', per_class=3, grid_per_class=2, filters=f), lambda: (clf, feats), torch.device('cpu'))
                   for f in ({}, {'var': {'temperature': 0.05, 'top_k': 4, 'top_p': 0.5}}))
    assert (plain['temperature'], plain['top_k'], plain['top_p']) == (1.0, 0, 1.0)
    assert (cold['temperature'], cold['top_k'], cold['top_p']) == (0.05, 4, 0.5)
    assert plain['fd'] != cold['fd']                                       # another draw, not only another label


def test_settings_sweep_covers_filters_and_picks_the_lowest_validation_fd(tiny_run):
    "bench_guidance.py sweeps temperature and top-p beside the guidance, against the validation reference, and names the lowest mean FD."
    tmp, run, _, _ = tiny_run
    out = tmp / 'sweep.jsonl'
    bench = Path(__file__).resolve().parent.parent / 'benchmarks' / 'bench_guidance.py'
    res = subprocess.run([sys.executable, str(bench), '--run', str(run), '--models', 'var', '--per-class', '3', '--schedules', 'linear',
                          '--var-cfgs', '1', '--temperatures', '0.5', '1', '--top-ps', '0.9', '1', '--out', str(out)],
                         env=cli_env(tmp), capture_output=True, text=True, timeout=600, check=True)
    cells = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((c['temperature'], c['top_p']) for c in cells) == [(0.5, 0.9), (0.5, 1.0), (1.0, 0.9), (1.0, 1.0)]
    assert all(c['reference'] == 'validation' and c['kind'] == 'var' and c['top_k'] == 0 for c in cells)
    assert len({c['fd'] for c in cells}) == 4                              # four different draws
    best = min(cells, key=lambda c: c['fd'])
    assert (f"best var setting on the validation reference: cfg 1.0 linear, temperature {best['temperature']}, top_k 0, "
            f"top_p {best['top_p']} (mean FD {best['fd']:.2f}") in res.stdout
    again = subprocess.run([sys.executable, str(bench), '--select', str(out)], capture_output=True, text=True, timeout=120, check=True)
    assert res.stdout.splitlines()[-1] == again.stdout.splitlines()[-1]     # --select applies the same rule to the file


def test_killed_mid_stage_resumes_exactly(tiny_run):
    "SIGKILL the job while a stage's fit checkpoint exists, run it again: same weights as the uninterrupted run."
    tmp, reference, _, _ = tiny_run
    run = tmp / 'killed'
    args = [script('sar_ref_demo'), '--budget', 'tiny', '--out', str(run), '--device', 'cpu', '--no-progress', '--methods', 'AR']
    proc = subprocess.Popen(args, env=cli_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while True:                                  # wait until a stage is between two fit checkpoints, then freeze it there
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, 'no fit checkpoint appeared'
        if list(run.glob('train/*/last.pt')):
            proc.send_signal(signal.SIGSTOP)
            found = list(run.glob('train/*/last.pt'))
            if found: break
            proc.send_signal(signal.SIGCONT)     # that stage finished meanwhile: wait for the next one
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stage = found[0].parent.name
    res = demo(run, cli_env(tmp), '--methods', 'AR')
    assert f'{stage}: resuming at step' in res.stdout
    assert not list(run.glob('train/*/last.pt'))
    for name in ('classifier.pt', 'vqvae.pt', 'fmt_ar.pt'):
        (m1, e1), (m2, e2) = weights(run / name), weights(reference / name)
        assert m1.keys() == m2.keys() and all(torch.equal(m1[k], m2[k]) for k in m1), name
        assert (e1 is None) == (e2 is None) and (e1 is None or all(torch.equal(e1[k], e2[k]) for k in e1)), name
    table = (run / 'results.md').read_text()
    assert '| AR | 64 |' in table and '| VAR |' not in table


def test_sample_writes_a_valid_npz(tiny_run):
    tmp, run, _, _ = tiny_run
    out = tmp / 'fmt.npz'
    res = run_cli('sar_ref_sample', '--ckpt', run / 'fmt_sar_ts.pt', '--n', 13, '--out', out, '--steps', 4, '--device', 'cpu',
                  '--no-progress', env=cli_env(tmp))
    assert 'wrote 13 images' in res.stdout
    with np.load(out) as z:
        assert set(z.files) == {'images', 'labels'}
        assert z['images'].dtype == np.uint8 and z['images'].shape == (13, 32, 32)
        assert z['labels'].dtype == np.int64 and z['labels'].tolist() == [i % 10 for i in range(13)]
    from sar_ref.evaluation import load_samples_npz
    images, labels = load_samples_npz(out)                                        # the evaluator reads it
    assert images.shape == (13, 32, 32) and labels.shape == (13,)


def test_sample_in_process_var_one_class(tiny_run, capsys):
    "The command function called as Python (what the console script does after parsing): a VAR, one class."
    tmp, run, _, _ = tiny_run
    out = tmp / 'var.npz'
    sar_ref_sample(ckpt=str(run / 'var.pt'), n=5, out=str(out), label=3, device='cpu', progress=False)
    with np.load(out) as z:
        assert z['images'].shape == (5, 32, 32) and z['labels'].tolist() == [3] * 5
    assert 'wrote 5 images' in capsys.readouterr().out


def test_train_command_writes_a_checkpoint(tiny_run):
    "A training command on the run's tokenizer, with a resumable work folder."
    tmp, run, _, _ = tiny_run
    out = tmp / 'cmd' / 'fmt_mar.pt'
    res = run_cli('sar_ref_train_fmt', '--preset', 'MAR', '--tiny', '--steps', 4, '--batch_size', 16, '--n_train', 300,
                  '--tokenizer', run / 'vqvae.pt', '--out', out, '--work_dir', tmp / 'cmd' / 'work', '--ckpt_every', 2,
                  '--device', 'cpu', env=cli_env(tmp))
    assert f'wrote {out}' in res.stdout
    ckpt = load_checkpoint(out)
    assert ckpt['kind'] == 'fmt' and ckpt['extra']['preset'] == 'MAR' and ckpt['config']['train_intervals'] == 'mar'
    assert load_checkpoint(tmp / 'cmd' / 'work' / 'last.pt')['step'] == 4


def test_bad_arguments_exit_2_with_one_line(tiny_run):
    "Through the installed scripts: a clear message naming the argument, exit status 2, no traceback."
    tmp, run, _, _ = tiny_run
    env = cli_env(tmp)
    cases = [(('sar_ref_demo', '--methods', 'VAR,GAN', '--out', tmp / 'x'), "--methods='VAR,GAN': unknown method 'GAN'"),
             (('sar_ref_sample', '--ckpt', run / 'var.pt', '--n', 0), '--n=0'),
             (('sar_ref_sample', '--ckpt', tmp / 'missing.pt'), "missing.pt': no such file"),
             (('sar_ref_sample', '--ckpt', run / 'vqvae.pt'), "holds a 'vqvae' model; expected 'var' or 'fmt'")]
    for (name, *args), message in cases:
        res = run_cli(name, *args, env=env, check=False)
        assert res.returncode == 2, (name, args, res.stderr)
        assert message in res.stderr and 'Traceback' not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize('call, message', [
    (lambda run: sar_ref_demo(budget='huge', out=str(run.parent / 'y')), "--budget='huge'"),
    (lambda run: sar_ref_demo(methods='diffusion', out=str(run.parent / 'y')), "unknown method 'diffusion'"),
    (lambda run: sar_ref_sample(ckpt=str(run / 'fmt_ar.pt'), n=-3), '--n=-3'),
    (lambda run: sar_ref_sample(ckpt=str(run / 'classifier.pt')), "holds a 'classifier' model"),
    (lambda run: sar_ref_sample(ckpt=str(run / 'fmt_ar.pt'), cfg_schedule='cosine'), "--cfg_schedule='cosine'"),
    (lambda run: sar_ref_sample(ckpt=str(run / 'fmt_ar.pt'), order='zigzag'), "--order='zigzag'"),
    (lambda run: sar_ref_sample(ckpt=str(run / 'var.pt'), steps=10), '--steps=10'),
    (lambda run: sar_ref_sample(ckpt=str(run / 'var.pt'), out='x.png'), "--out='x.png'"),
    (lambda run: sar_ref_train_fmt(preset='GAN', out=str(run.parent / 'z.pt')), "--preset='GAN'"),
    (lambda run: sar_ref_train_fmt(preset='AR', tokenizer=str(run / 'var.pt'), out=str(run.parent / 'z.pt')), "holds a 'var' model"),
    (lambda run: sar_ref_train_fmt(preset='AR', steps=0, out=str(run.parent / 'z.pt')), '--steps=0'),
])
def test_bad_arguments_in_process(tiny_run, capsys, call, message):
    _, run, _, _ = tiny_run
    with pytest.raises(SystemExit) as e: call(run)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
