"The GPU benchmark script runs end to end on tiny models on the CPU (its --smoke mode) and prints its table."
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / 'benchmarks' / 'bench_scale.py'


def test_bench_scale_smoke_prints_every_section():
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, str(SCRIPT), '--smoke', '--no-compile'], capture_output=True, text=True,
                         timeout=600, env=env, check=True).stdout
    table = out[out.index('# Table'):]
    for measure in ('VAR d16 fp32 (TF32) eager', 'SAR-TS 16 sets, bf16 eager', 'AR raster, bf16, no KV cache',
                    'cached == uncached tokens, fp32 | True', 'SDPA backends', 'training step'):
        assert measure in table, measure
    assert 'failed' not in table
    assert '| False |' not in table


def test_bench_scale_refuses_a_cpu_without_smoke():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    res = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 2 and 'no CUDA device' in res.stderr
