"Running the installed console scripts from tests."
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def script(name):
    "The installed console script `name` (pip install -e . puts it beside the interpreter)."
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.is_file() else shutil.which(name)
    if found is None: pytest.skip(f'{name} is not installed: run `pip install -e .`')
    return found


def run_cli(name, *args, env, check=True, timeout=300):
    "Run a console script; with check, fail the test (showing stderr) unless it exits 0."
    res = subprocess.run([script(name), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)
    if check: assert res.returncode == 0, res.stderr[-3000:]
    return res
