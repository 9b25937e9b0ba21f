"""The README's code runs as written: its Python tours and its `adaptive bank` commands.

Not yet covered (see the issue note): the calibration tour's Python block and the `score`/`calibrate`
commands, which name the user's own data (X, responses.csv) rather than files in the repository.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
PLACEHOLDERS = ("calibrate(X", "responses.csv")  # blocks about the reader's own data
PYTHON = [code for lang, code in BLOCKS if lang == "python" and not any(p in code for p in PLACEHOLDERS)]
COMMANDS = [line.split("#")[0].strip() for lang, code in BLOCKS if lang == "bash" for line in code.splitlines()
            if line.startswith("adaptive bank ")]


def test_the_readme_has_what_this_test_runs():
    assert len(PYTHON) >= 2 and len(COMMANDS) >= 3


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{k}" for k in range(len(PYTHON))])
def test_python_block_runs_as_written(code, tmp_path):
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("command", COMMANDS)
def test_bank_command_runs_as_written(command, tmp_path):
    args = shlex.split(command)[1:]
    args = [str(ROOT / a) if a.startswith("item_pools/") else a for a in args]  # the README runs from the repo root
    run = subprocess.run([sys.executable, "-m", "adaptive", *args], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env={**os.environ})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() or any(tmp_path.iterdir())
