"""Durability and faults with a real server process: SIGKILL and restart, alone and under load.

`adaptive serve` runs in a child process on loopback; it is killed with SIGKILL (no shutdown
code runs) and started again on the same database. Every acknowledged answer must be stored
exactly once, every session must present the same next item as before the kill, and every
result must equal a replay of the stored answers.
"""

import threading
import time

import httpx
import numpy as np
import pytest

from tests.service.loadtest import (
    ServerProcess,
    register_candidates,
    run_candidates,
    summarize,
    verify_sessions,
)

from .helpers import API, keyed_choice, leaks

pytestmark = pytest.mark.slow


def test_sigkill_and_restart_resume_every_session_at_the_same_item(db_url, cmcs_pool, cmcs_bank, tmp_path):
    server = ServerProcess(db_url, bank=cmcs_pool, log_path=tmp_path / "server.log").start()
    try:
        sessions = []
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for k in range(5):
                data = c.post(API + "/sessions", json={}).json()
                headers = {"Authorization": f"Bearer {data['token']}"}
                item = data["item"]
                for step in range(2 + 5 * k):
                    body = {"item_id": item["item_id"], "seq": item["seq"],
                            "choice": keyed_choice(cmcs_bank, item, step % 4 != 1)}
                    item = c.post(f"{API}/sessions/{data['session_id']}/answers", headers=headers, json=body).json()[
                        "next"]
                sessions.append((data["session_id"], headers, item))
        killed_at = time.monotonic()
        server.kill()
        server.start()
        down = time.monotonic() - killed_at
        assert server.starts == 2
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for sid, headers, item in sessions:
                cur = c.get(f"{API}/sessions/{sid}/item", headers=headers).json()
                assert (cur["item"]["item_id"], cur["item"]["seq"]) == (item["item_id"], item["seq"])
                assert cur["progress"]["answered"] == item["seq"] - 1
                # the same option order, and the clock went on from where it was (not reset, not run ahead)
                assert cur["item"]["options"] == item["options"]
                left, before = cur["item"]["time_remaining_seconds"], item["time_remaining_seconds"]
                assert before - down - 2.0 <= left <= before + 0.5, (before, left, down)
    finally:
        server.stop()


def test_concurrent_candidates_survive_a_kill_mid_run(db_url, cmcs_pool, cmcs_bank, tmp_path):
    """The load-and-fault test at a small size (benchmarks/bench_service.py runs 200 candidates), with launch
    codes as on exam day (no practice mode)."""
    n = 12
    codes = register_candidates(db_url, n)
    server = ServerProcess(db_url, bank=cmcs_pool, log_path=tmp_path / "server.log", practice=False).start()
    killed = threading.Event()

    def kill_mid_run(acked):
        if acked >= n * 12 and not killed.is_set():
            killed.set()
            server.kill()
            time.sleep(0.2)
            server.start()

    try:
        thetas = np.random.default_rng(20261124).normal(0.3, 1.0, n)
        t0 = time.perf_counter()
        logs = run_candidates(server.url, cmcs_bank, thetas, seed=7, timeout=240, on_answer=kill_mid_run, codes=codes)
        summary = summarize(logs, time.perf_counter() - t0)
    finally:
        server.stop()
    assert killed.is_set() and server.starts == 2
    assert [lg.error for lg in logs] == [None] * n
    assert summary.finished == n and summary.answers >= n * 35
    assert summary.retries > 0  # the kill was felt by the candidates
    assert verify_sessions(db_url, logs) == []
    for lg in logs:  # what the candidates saw under load gives nothing away either
        for body in lg.bodies:
            assert not leaks(body, cmcs_bank, own_session=lg.session_id,
                             others=[o.token for o in logs if o is not lg]), body[:200]


def test_several_processes_on_one_database_serve_the_same_sessions(db_url, cmcs_pool, cmcs_bank, tmp_path):
    """Issue 17 (scale-out): two `adaptive serve` processes on one database. Every request of every candidate
    goes to either process at random (a load balancer), a fifth of the answers are also sent at the same moment
    through the other process (a browser's retry racing the first), and one process is killed mid-run and not
    restarted (its candidates carry on through the other). Zero 5xx; nothing lost or doubled; every result
    equal to its replay; every racing duplicate answered 200 (recorded or repeated) or 409 (lost the race)."""
    n = 16
    codes = register_candidates(db_url, n)
    servers = [ServerProcess(db_url, bank=cmcs_pool, log_path=tmp_path / f"server{k}.log", practice=False).start()
               for k in range(2)]
    killed = threading.Event()

    def kill_one(acked):
        if acked >= n * 15 and not killed.is_set():
            killed.set()
            servers[1].kill()

    try:
        thetas = np.random.default_rng(20261202).normal(0.3, 1.0, n)
        logs = run_candidates([s.url for s in servers], cmcs_bank, thetas, seed=11, timeout=300,
                              on_answer=kill_one, double_submit=0.2, codes=codes)
    finally:
        for s in servers:
            s.stop()
    assert killed.is_set()
    assert [lg.error for lg in logs] == [None] * n
    assert sum(lg.server_errors for lg in logs) == 0
    duplicates = [st for lg in logs for st in lg.duplicates]
    assert len(duplicates) > 20 and set(duplicates) <= {200, 409, None}  # None: sent to the killed process
    assert all(lg.result is not None for lg in logs)
    assert verify_sessions(db_url, logs) == []


def test_uvicorn_worker_processes_serve_one_database(db_url, cmcs_pool, cmcs_bank, tmp_path):
    """Issue 17: `adaptive serve --workers 2` (uvicorn's worker processes on one port, one database): candidates
    from launch codes finish, nothing lost or doubled, every result equal to its replay, every session signed."""
    n = 12
    codes = register_candidates(db_url, n)
    server = ServerProcess(db_url, bank=cmcs_pool, log_path=tmp_path / "server.log", practice=False,
                           extra=("--workers", "2")).start()
    try:
        thetas = np.random.default_rng(20261202).normal(0.3, 1.0, n)
        logs = run_candidates(server.url, cmcs_bank, thetas, seed=5, timeout=240, codes=codes)
    finally:
        server.stop()
    assert [lg.error for lg in logs] == [None] * n
    assert sum(lg.server_errors for lg in logs) == 0
    assert verify_sessions(db_url, logs) == []
    assert "2 worker processes" in (tmp_path / "server.log").read_text()
