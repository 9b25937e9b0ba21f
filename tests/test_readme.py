"""The README's code runs as written: every Python block and every `adaptive ...` command of its tours
(from a folder that sees the repository's item_pools/ and calibration/, as a reader at the repository root)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
#: the `adaptive ...` commands of each bash block, in order (a block's commands run one after another in one folder)
SCENARIOS = [cmds for cmds in ([line.split("  #")[0].strip()
                                for line in code.replace("\\\n", " ").splitlines()
                                if line.startswith("adaptive ") and not line.startswith("adaptive serve")]
                               for lang, code in BLOCKS if lang == "bash") if cmds]  # serve: tests/service
COMMANDS = [c for cmds in SCENARIOS for c in cmds]


@pytest.fixture
def repo_root_copy(tmp_path):
    """A working folder where item_pools/ and calibration/ are the repository's (outputs land here)."""
    for name in ("item_pools", "calibration"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


def test_the_readme_has_what_this_test_runs():
    assert len(PYTHON) >= 3 and len(COMMANDS) >= 6
    assert any(c.startswith("adaptive score") for c in COMMANDS) and any("calibrate" in c for c in COMMANDS)


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{k}" for k in range(len(PYTHON))])
def test_python_block_runs_as_written(code, repo_root_copy):
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=repo_root_copy)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("commands", SCENARIOS, ids=[c[0][:60] for c in SCENARIOS])
def test_commands_run_as_written(commands, repo_root_copy):
    for command in commands:
        run = subprocess.run([sys.executable, "-m", "adaptive", *shlex.split(command)[1:]], capture_output=True,
                             text=True, timeout=300, cwd=repo_root_copy)
        assert run.returncode == 0, (command, run.stderr[-2000:])
        assert "Traceback" not in run.stderr
        out = [a for a in shlex.split(command) if a.endswith((".json", ".csv", ".png")) and "/" not in a]
        for name in out:  # every file the command names as its output was written
            assert (repo_root_copy / name).stat().st_size > 0, name


def test_the_example_responses_are_what_their_script_writes():
    run = subprocess.run([sys.executable, str(ROOT / "calibration" / "make_example_responses.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_example_window_is_what_its_script_writes():
    run = subprocess.run([sys.executable, str(ROOT / "calibration" / "make_example_window.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
