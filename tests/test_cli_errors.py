"""Every subcommand, run as a user would (a subprocess), with broken inputs: a non-zero exit, an ``error:``
line that names the file, flag or value, and never a traceback (issue 17: one error path for the CLI)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaptive.resources import demo_bank_path, pool_path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, env=None, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "adaptive", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


def _refused(run, *needles, exit_codes=(1, 2)):
    assert run.returncode in exit_codes, (run.returncode, run.stdout[-500:], run.stderr[-2000:])
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, run.stderr
    lines = [ln for ln in (run.stderr + run.stdout).splitlines() if ln.strip()]
    # an error line, or (bank check) a report of the problems found
    error_lines = [ln for ln in lines if "error:" in ln] or [ln for ln in lines if "problem" in ln or "  - " in ln]
    assert error_lines, run.stderr
    text = " ".join(error_lines)
    for needle in needles:
        assert needle in text, (needle, run.stderr)
    return text


@pytest.fixture(scope="module")
def responses(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    p = d / "responses.csv"
    bank_ids = ["CMCS-ICD-001", "CMCS-ICD-002", "CMCS-ICD-003"]
    p.write_text("person," + ",".join(bank_ids) + "\nA,1,0,1\nB,0,0,1\n", encoding="utf-8")
    return p


def test_missing_unreadable_and_wrong_kind_of_files_name_the_path(tmp_path, responses):
    _refused(_run("score", tmp_path / "nope.csv", "--bank", demo_bank_path()), "nope.csv", "does not exist")
    _refused(_run("score", tmp_path, "--bank", demo_bank_path()), str(tmp_path), "is a directory")
    _refused(_run("score", responses, "--bank", tmp_path / "missing.json"), "missing.json")
    _refused(_run("calibrate", tmp_path / "none.csv"), "none.csv")
    _refused(_run("bank", "check", tmp_path / "nothing.json"), "nothing.json")
    _refused(_run("demo", "--design", tmp_path / "d.toml"), "d.toml")
    _refused(_run("simulate", tmp_path / "study.toml", "--out", tmp_path / "o"), "study.toml")


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("person,CMCS-ICD-001\nJos\xe9,1\n".encode("latin-1"))
    _refused(_run("score", latin, "--bank", demo_bank_path()), "latin1.csv", "not UTF-8")
    bank = tmp_path / "bank.json"
    bank.write_bytes(b'{"items": [{"id": "\xff"}]}')
    _refused(_run("bank", "check", bank), "bank.json", "not UTF-8")


def test_outputs_into_missing_folders_or_onto_files_are_refused_with_the_path(tmp_path, responses):
    _refused(_run("score", responses, "--bank", demo_bank_path(), "--out", tmp_path / "no" / "such" / "x.csv"),
             "x.csv")
    busy = tmp_path / "taken"
    busy.write_text("a file", encoding="utf-8")
    study = ROOT / "simulations" / "cmcs_quick.toml"
    if not study.exists():
        study = next((ROOT / "simulations").glob("*.toml"))
    _refused(_run("simulate", study, "--out", busy, "--no-plots", "--quiet"), str(busy))


@pytest.mark.parametrize("args, needle", [
    (("serve", "--port", "99999"), "99999"),
    (("simulate", "x.toml", "--out", "o", "--workers", "-1"), "-1"),
    (("demo", "--theta", "nan"), "nan"),
    (("demo", "--theta", "1e999"), "1e999"),
    (("calibrate", "x.csv", "--max-iter", "-5"), "-5"),
    (("calibrate", "x.csv", "--tol", "nan"), "nan"),
    (("calibrate", "x.csv", "--quadrature", "100000000"), "100000000"),
    (("calibrate", "x.csv", "--model", "3PK"), "did you mean '3pl'"),
    (("score", "x.csv", "--bank", "b.json", "--raw-cut", "-3"), "-3"),
    (("serve", "--rate-limit", "answers=5/60"), "answers=5/60"),
    (("serve", "--rate-limit", "start_per_client=0/60"), "0/60"),
    (("candidates", "register", "--candidate", "C", "--window-start", "next week"), "next week"),
    (("candidates", "code", "0"), "0"),
])
def test_flags_are_checked_before_any_work(args, needle):
    run = _run(*args)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert needle in run.stderr.splitlines()[-1], run.stderr


def test_a_theta_cut_off_the_scale_is_refused_in_one_line():
    run = _run("score", ROOT / "calibration" / "examples" / "cmcs_responses.csv", "--bank",
               ROOT / "item_pools" / "cmcs", "--theta-cut", "200")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == ["error: --theta-cut 200 is outside -20..20 logits; give the cut on the "
                                               "bank's θ scale"]


def test_candidates_mistakes_get_one_line_each(tmp_path):
    db = f"sqlite:///{tmp_path / 'exam.db'}"
    for args, needle in [(("register", "--candidate", "C", "--time-multiplier", "nan"), "time_multiplier"),
                         (("register", "--candidate", "C", "--time-multiplier", "9"), "from 1 to 4"),
                         (("register", "--candidate", "C", "--attempts", "3"), "allows 1 to 1 attempts"),
                         (("code", "7"), "eligibility 7 does not exist"),
                         (("list", "--db", f"sqlite:///{tmp_path / 'no' / 'such.db'}"), "does not exist")]:
        run = _run("candidates", *args, *(() if "--db" in args else ("--db", db)))
        assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
        assert needle in run.stderr, (args, run.stderr)
    ok = _run("candidates", "register", "--candidate", "C-1", "--db", db)
    assert ok.returncode == 0 and re.search(r"launch code for attempt 1: [A-Z2-9]{4}(-[A-Z2-9]{4}){3}", ok.stdout)


def test_output_cut_short_by_the_reader_is_quiet():
    proc = subprocess.Popen([sys.executable, "-m", "adaptive", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    first = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()  # as `adaptive demo | head -3` does
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert first[0] and "Traceback" not in err and "BrokenPipe" not in err, err


def _terminal_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_in_the_terminal_exam_ends_with_one_line():
    # A terminal delivers Ctrl-C to a process whose SIGINT is the default and unblocked. An ignored or blocked
    # SIGINT survives exec, so one inherited from the test run (a background job, a library earlier in the
    # suite) would make the child deaf to it: give the child what a terminal gives.
    proc = subprocess.Popen([sys.executable, "-m", "adaptive", "take", "--seed", "1"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_terminal_sigint)
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    shown = b""
    while b"your answer" not in shown:  # wait until the first question waits for an answer (no fixed sleep)
        chunk = proc.stdout.read1(4096)
        assert chunk, (proc.wait(timeout=30), shown)
        shown += chunk
    proc.send_signal(signal.SIGINT)  # stdin stays open: the exam is interrupted, not given an end of input
    proc.wait(timeout=30)
    err = proc.stderr.read().decode()
    proc.stdin.close()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and "interrupted" in err


def test_a_missing_optional_package_names_the_extra(tmp_path):
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'matplotlib'\", "
                                        "name='matplotlib')\n", encoding="utf-8")
    run = _run("bank", "info", pool_path("cmcs"), "--plot", tmp_path / "info.png",
               env={"PYTHONPATH": str(tmp_path / "shadow")})
    _refused(run, "matplotlib", "adaptive-cat[plots]")


def test_a_busy_port_is_refused_before_the_server_says_it_serves(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        run = _run("serve", "--port", taken, "--db", f"sqlite:///{tmp_path / 's.db'}", timeout=60)
    text = _refused(run, str(taken), "another --port")
    assert "serving on" not in run.stderr.replace(text, "")


def test_an_unreachable_dask_scheduler_is_reported_in_seconds():
    study = next((ROOT / "simulations").glob("*.toml"))
    t0 = time.monotonic()
    run = _run("simulate", study, "--out", "unused", "--scheduler", "tcp://127.0.0.1:9", "--quiet", "--no-plots",
               timeout=120)
    _refused(run, "--scheduler", "tcp://127.0.0.1:9")
    assert time.monotonic() - t0 < 60


def test_a_missing_optional_package_is_named_with_its_extra():
    from adaptive.cli_support import describe_error

    hint = "reading QTI needs defusedxml (safe XML parsing): pip install 'adaptive-cat[qti]'"
    assert describe_error(ImportError(hint)) == (f"error: {hint}", 1)
    message, code = describe_error(ModuleNotFoundError("No module named 'defusedxml'", name="defusedxml"))
    assert code == 1 and "pip install 'adaptive-cat[qti]'" in message and "?" not in message
