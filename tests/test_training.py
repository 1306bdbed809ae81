"The training loop from the outside: a SIGKILLed run resumes exactly, two-process DDP and FSDP equal one process, damaged checkpoints."
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train_script
from sar_ref.training import CheckpointError, fit, load_checkpoint, load_model, read_metrics

SCRIPT = Path(__file__).with_name('train_script.py')


def script_env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS='1', GLOO_SOCKET_IFNAME='lo', **extra)
    env['PYTHONPATH'] = os.pathsep.join([str(SCRIPT.parent.parent), env.get('PYTHONPATH', '')])
    return env


def run_script(out, *args, launcher=(sys.executable,)):
    subprocess.run([*launcher, str(SCRIPT), '--out', str(out), *map(str, args)], check=True, timeout=180,
                   env=script_env(), capture_output=True)


def train_here(out, **kw):
    "train_script.train in this process, with the one thread the script processes use (so results match bit for bit)."
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try: return train_script.train(out, **kw)
    finally: torch.set_num_threads(threads)


def losses(out):
    return [r['loss'] for r in read_metrics(out)]


def test_sigkill_then_resume_repeats_the_run_exactly(tmp_path):
    args = ['--steps', 40, '--ckpt-every', 5]
    train_here(tmp_path / 'straight', steps=40, ckpt_every=5)
    killed = tmp_path / 'killed'
    proc = subprocess.Popen([sys.executable, str(SCRIPT), '--out', str(killed), *map(str, args)],
                            env=script_env(SAR_REF_TEST_DELAY='0.05'), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while len(read_metrics(killed)) < 13:            # steps 1..13 done: checkpoints at 5 and 10 written
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, 'the training process made no progress'
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    step_killed = load_checkpoint(killed / 'last.pt')['step']
    assert 10 <= step_killed < 40 and len(read_metrics(killed)) > step_killed    # killed between checkpoints
    run_script(killed, *args, '--resume')
    assert [r['step'] for r in read_metrics(killed)] == list(range(1, 41))
    assert losses(killed) == losses(tmp_path / 'straight')                        # exactly, fp32 on CPU
    a, b = load_checkpoint(killed / 'last.pt'), load_checkpoint(tmp_path / 'straight' / 'last.pt')
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k])
    for k in a['ema']: assert torch.equal(a['ema'][k], b['ema'][k])


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process_on_the_same_global_batch(tmp_path):
    args = ['--steps', 20, '--ckpt-every', 10, '--dropout', 0, '--grad-accum', 2]   # global batch 64: 5 epochs of 256
    train_here(tmp_path / 'one', steps=20, ckpt_every=10, dropout=0.0, batch_size=32, grad_accum=2)
    torchrun = (sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', '2',
                '--master_addr', '127.0.0.1', '--master_port', str(free_port()))
    run_script(tmp_path / 'two', *args, '--batch', 16, launcher=torchrun)
    one, two = read_metrics(tmp_path / 'one'), read_metrics(tmp_path / 'two')
    assert [r['step'] for r in two] == list(range(1, 21))                       # only rank 0 writes
    assert all(r['samples_per_s'] > 0 for r in two)
    assert torch.allclose(torch.tensor(losses(tmp_path / 'two')), torch.tensor(losses(tmp_path / 'one')), atol=1e-6, rtol=0)
    assert abs(one[-1]['acc'] - two[-1]['acc']) < 1e-6
    a, b = load_checkpoint(tmp_path / 'two' / 'last.pt'), load_checkpoint(tmp_path / 'one' / 'last.pt')
    for k in a['model']: assert torch.allclose(a['model'][k], b['model'][k], atol=1e-5)
    assert len(a['rng']) == 2                                                    # both ranks' random states


def test_two_process_fsdp_matches_one_process_and_resumes_exactly(tmp_path):
    "FSDP (gloo on CPU): the same steps as one process on the same global batch; stopped and resumed, the same run."
    torchrun = lambda: (sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', '2',
                        '--master_addr', '127.0.0.1', '--master_port', str(free_port()))
    train_here(tmp_path / 'one', steps=12, ckpt_every=4, batch_size=32, dropout=0.0)
    fsdp = ['--strategy', 'fsdp', '--batch', 16, '--ckpt-every', 4]
    run_script(tmp_path / 'two', '--steps', 12, *fsdp, '--dropout', 0, launcher=torchrun())   # no dropout: ranks draw their own
    run_script(tmp_path / 'full', '--steps', 12, *fsdp, launcher=torchrun())             # with dropout, uninterrupted
    assert load_checkpoint(tmp_path / 'full' / 'prev.pt')['step'] == 8
    run_script(tmp_path / 'cut', '--steps', 12, *fsdp, '--resume-from', tmp_path / 'full' / 'prev.pt', launcher=torchrun())
    one, two, full, cut = (torch.tensor(losses(tmp_path / d)) for d in ('one', 'two', 'full', 'cut'))
    assert len(one) == len(two) == len(full) == 12 and len(cut) == 4
    assert torch.allclose(two, one, atol=1e-6, rtol=0)
    assert torch.equal(cut, full[8:])                            # resumed from step 8, the sharded run repeats exactly
    a, b, c, f = (load_checkpoint(tmp_path / d / 'last.pt') for d in ('two', 'one', 'cut', 'full'))
    assert set(a['model']) == set(b['model'])                                    # gathered: the unsharded layout
    assert all(isinstance(k, str) for k in a['optimizer']['state'])              # optimiser state keyed by parameter name
    for k in a['model']:
        assert torch.allclose(a['model'][k], b['model'][k], atol=1e-5)
        assert torch.equal(f['model'][k], c['model'][k]) and torch.equal(f['ema'][k], c['ema'][k])
    assert isinstance(load_model(tmp_path / 'two' / 'last.pt'), train_script.MLP)   # loads like any checkpoint
    train_here(tmp_path / 'two', steps=14, ckpt_every=2, batch_size=32, resume=True)   # continues in one process
    assert len(losses(tmp_path / 'two')) == 14


def test_damaged_checkpoint_is_named_and_the_previous_one_still_loads(tmp_path):
    train_here(tmp_path, steps=4, ckpt_every=2)
    last, prev = tmp_path / 'last.pt', tmp_path / 'prev.pt'
    raw = last.read_bytes()
    last.write_bytes(raw[: len(raw) // 3])                                        # truncated
    with pytest.raises(CheckpointError, match=r"last\.pt.*truncated"): load_checkpoint(last)
    assert load_checkpoint(prev)['step'] == 2
    assert load_model(prev, kind='test_mlp').cfg == train_script.MLPConfig()
    flipped = bytearray(raw); flipped[len(flipped) // 2] ^= 0xFF                  # one flipped byte
    last.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"last\.pt.*corrupted"): load_checkpoint(last)
    with pytest.raises(CheckpointError, match=r"last\.pt"): load_model(last)
    with pytest.warns(UserWarning, match=r"last\.pt"):
        res = train_here(tmp_path, steps=4, ckpt_every=2, resume=True)  # falls back to prev.pt (step 2)
    assert [r['step'] for r in res.history] == [1, 2, 3, 4] and load_checkpoint(last)['step'] == 4
    (tmp_path / 'empty.pt').write_bytes(b'')
    with pytest.raises(CheckpointError, match=r"empty\.pt"):
        fit(train_script.MLP(train_script.MLPConfig()), train_script.synthetic_data(), resume_from=tmp_path / 'empty.pt')
