"The two study commands from the outside: the tiny recipe grid end to end and resumed, and bad arguments."
import json
import os

from console import run_cli


def env_for(tmp):
    "One thread and a private checkpoint_dir()."
    return dict(os.environ, OMP_NUM_THREADS='1', SAR_REF_CHECKPOINTS=str(tmp / 'ckpts'))


def test_grid_command_runs_resumes_and_prints_tables(tmp_path):
    env, out = env_for(tmp_path), tmp_path / 'grid'
    first = run_cli('sar_ref_grid', '--grid', 'tiny', '--out', out, '--device', 'cpu', '--no-progress', env=env)
    assert '| training order | training intervals |' in first.stdout and '| finding (SAR paper) |' in first.stdout
    saved = json.loads((out / 'grid.json').read_text())
    assert len(saved['rows']) == 1 * 2 * 2 * 2 * 2                      # seeds x orders x intervals x inference orders x steps
    models = {p.name: p.stat().st_mtime_ns for p in (out / 'models').glob('*.pt')}
    run_cli('sar_ref_grid', '--grid', 'tiny', '--out', out, '--device', 'cpu', '--no-progress', env=env)
    assert {p.name: p.stat().st_mtime_ns for p in (out / 'models').glob('*.pt')} == models      # nothing retrained
    assert json.loads((out / 'grid.json').read_text())['rows'] == saved['rows']


def test_bad_arguments_are_one_line_errors(tmp_path):
    env = env_for(tmp_path)
    for cmd, args, expected in (('sar_ref_grid', ('--grid', 'huge'), "grid='huge'"),
                                ('sar_ref_grid', ('--tokenizer_from', tmp_path / 'nowhere'), 'tokenizer_from='),
                                ('sar_ref_scaling', ('--config', 'huge'), "config='huge'"),
                                ('sar_ref_scaling', ('--threads', '-1'), 'threads')):
        res = run_cli(cmd, '--out', tmp_path / 'x', *args, env=env, check=False)
        assert res.returncode == 2 and expected in res.stderr and 'Traceback' not in res.stderr, (cmd, res.stderr)
