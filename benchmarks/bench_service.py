"""Delivery-service load and fault benchmark.

200 simulated candidates (θ ~ N(0.3, 1), one thread and one keep-alive connection each) take the
CMCS adaptive exam at the same time against ``adaptive serve`` running in a child process on
loopback, on SQLite and on a PostgreSQL server started for the run. As on exam day, each candidate
is registered first and starts with a launch code (no practice mode; the rate limits are off, all
candidates share one address); options are shuffled per candidate. Each database gets two runs:

- ``steady``: no faults;
- ``kill``: the server is killed with SIGKILL once 40% of the expected answers are acknowledged,
  and started again; candidates retry what failed.

After each run every session is checked against the database (every acknowledged answer stored
once, nothing unacknowledged stored, the stored result equal to a replay of the stored answers).
Throughput is acknowledged answers per second of wall time; latency is that of each successful
answer request as the candidate measured it (p50/p99). Server and candidates share the machine's
cores. No peer package offers an HTTP delivery service, so there is nothing to run beside it.

Run::

    .venv/bin/python benchmarks/bench_service.py [--candidates 200] [--no-postgres]
    .venv/bin/python benchmarks/bench_service.py --processes 1 2 4     # N `adaptive serve` processes, one database
    .venv/bin/python benchmarks/bench_service.py --workers 1 2 4       # one `adaptive serve --workers N`
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the load-test harness in tests/

from adaptive import ItemBank
from adaptive.resources import pool_path
from tests.service.loadtest import (
    ServerProcess,
    create_database,
    postgres_bindir,
    register_candidates,
    run_candidates,
    summarize,
    temporary_postgres,
    verify_sessions,
)

MEAN_LENGTH = 49  # CMCS: about 44 scored + 5 pretest answers per candidate (item_pools/simulate_pools.py)


def one_run(db: str, n: int, kill: bool, workdir: str, seed: int) -> dict:
    bank = ItemBank.load(pool_path("cmcs"))
    codes = register_candidates(db, n)
    server = ServerProcess(db, bank=pool_path("cmcs"), log_path=os.path.join(workdir, "server.log"),
                           practice=False).start()
    killed = threading.Event()
    down = []

    def maybe_kill(acked):
        if kill and not killed.is_set() and acked >= 0.4 * n * MEAN_LENGTH:
            killed.set()
            t = time.perf_counter()
            server.kill()
            server.start()
            down.append(time.perf_counter() - t)

    thetas = np.random.default_rng(seed).normal(0.3, 1.0, n)
    t0 = time.perf_counter()
    try:
        logs = run_candidates(server.url, bank, thetas, seed=seed, timeout=900, on_answer=maybe_kill, codes=codes)
        seconds = time.perf_counter() - t0
    finally:
        server.stop()
    s = summarize(logs, seconds)
    problems = verify_sessions(db, logs)
    return {**s.to_dict(), "problems": len(problems), "first_problem": problems[0] if problems else "",
            "restart_s": down[0] if down else None}


def processes_run(db: str, n: int, n_proc: int, workdir: str, seed: int) -> dict:
    """``n_proc`` server processes on one database, requests spread over them at random, 10% of the answers
    double-submitted through another process, one process killed (not restarted) at 40% of the answers."""
    bank = ItemBank.load(pool_path("cmcs"))
    codes = register_candidates(db, n)
    servers = [ServerProcess(db, bank=pool_path("cmcs"), log_path=os.path.join(workdir, f"server{k}.log"),
                             practice=False).start() for k in range(n_proc)]
    killed = threading.Event()

    def maybe_kill(acked):
        if n_proc > 1 and not killed.is_set() and acked >= 0.4 * n * MEAN_LENGTH:
            killed.set()
            servers[-1].kill()

    thetas = np.random.default_rng(seed).normal(0.3, 1.0, n)
    t0 = time.perf_counter()
    try:
        logs = run_candidates([s.url for s in servers], bank, thetas, seed=seed, timeout=900, on_answer=maybe_kill,
                              double_submit=0.1 if n_proc > 1 else 0.0, codes=codes)
        seconds = time.perf_counter() - t0
    finally:
        for srv in servers:
            srv.stop()
    s = summarize(logs, seconds)
    problems = verify_sessions(db, logs)
    return {**s.to_dict(), "problems": len(problems), "server_errors": sum(lg.server_errors for lg in logs),
            "duplicates": sum(len(lg.duplicates) for lg in logs), "killed": killed.is_set()}


def workers_run(db: str, n: int, n_workers: int, workdir: str, seed: int) -> dict:
    """One ``adaptive serve --workers N`` (uvicorn's worker processes sharing one port and one database)."""
    bank = ItemBank.load(pool_path("cmcs"))
    codes = register_candidates(db, n)
    server = ServerProcess(db, bank=pool_path("cmcs"), log_path=os.path.join(workdir, "workers.log"), practice=False,
                           extra=("--workers", str(n_workers))).start()
    thetas = np.random.default_rng(seed).normal(0.3, 1.0, n)
    t0 = time.perf_counter()
    try:
        logs = run_candidates(server.url, bank, thetas, seed=seed, timeout=900, codes=codes)
        seconds = time.perf_counter() - t0
    finally:
        server.stop()
    s = summarize(logs, seconds)
    problems = verify_sessions(db, logs)
    return {**s.to_dict(), "problems": len(problems), "server_errors": sum(lg.server_errors for lg in logs)}


def in_process(n_sessions: int, workdir: str) -> float:
    """Milliseconds per answer through ``Delivery`` with no HTTP: validate, engine update, next item, commit."""
    from adaptive.cat import ExamDesign
    from adaptive.service import Delivery, open_store

    store = open_store(f"sqlite:///{workdir}/in_process.db")
    delivery = Delivery(store, practice=True)
    delivery.add_version(ItemBank.load(pool_path("cmcs")), ExamDesign.load(pool_path("cmcs") / "design.json"))
    count, t0 = 0, time.perf_counter()
    for k in range(n_sessions):
        s = delivery.start()
        item = s["item"]
        while item is not None:
            item = delivery.answer(s["session_id"], s["token"], item_id=item["item_id"], seq=item["seq"],
                                   choice="ABCD"[(k + item["seq"]) % 4])["next"]
            count += 1
    ms = (time.perf_counter() - t0) / count * 1e3
    store.close()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--in-process-only", action="store_true", help="only the per-answer cost without HTTP")
    ap.add_argument("--processes", type=int, nargs="*", metavar="N",
                    help="only the scale-out runs: N server processes on one database for each N given (e.g. 1 2 4)")
    ap.add_argument("--workers", type=int, nargs="*", metavar="N",
                    help="only the uvicorn-workers runs: one `adaptive serve --workers N` for each N given")
    args = ap.parse_args()
    if args.processes:
        return scale_out(args)
    if args.workers:
        return workers_table(args)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"in-process (Delivery on SQLite, no HTTP): {in_process(40, tmp):.2f} ms per answer", flush=True)
    if args.in_process_only:
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", lambda k: f"sqlite:///{tmp}/bench_{k}.db")]
        pg = None
        if not args.no_postgres and postgres_bindir() is not None:
            pg = temporary_postgres()
            server_url = pg.__enter__()
            targets.append(("PostgreSQL", lambda k: create_database(server_url, f"bench_{k}")))
        try:
            for name, make_db in targets:
                for k, kill in enumerate([False, True]):
                    r = one_run(make_db(k), args.candidates, kill, tmp, seed=100 + k)
                    rows.append((name, "kill + restart" if kill else "steady", r))
                    print(f"{name:10s} {'kill' if kill else 'steady':6s} {r}", flush=True)
        finally:
            if pg is not None:
                pg.__exit__(None, None, None)
    print()
    print("| database | run | candidates | finished | answers | wall s | answers/s | p50 ms | p99 ms | retries | "
          "restart s | verification problems |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, run, r in rows:
        restart = f"{r['restart_s']:.2f}" if r["restart_s"] is not None else "-"
        print(f"| {name} | {run} | {r['candidates']} | {r['finished']} | {r['answers']} | {r['seconds']:.1f} | "
              f"{r['throughput']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['retries']} | {restart} | "
              f"{r['problems']} |")


def _sweep(args, counts, run, prefix: str, seed0: int, what: str) -> list:
    """``run(db, candidates, n, workdir, seed)`` for each n in ``counts`` on each database (PostgreSQL first when
    it is available, then SQLite), printing each run as it ends; returns (database, n, result) rows."""
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", lambda k: f"sqlite:///{tmp}/{prefix}_{k}.db")]
        pg = None
        if not args.no_postgres and postgres_bindir() is not None:
            pg = temporary_postgres()
            server_url = pg.__enter__()
            targets.insert(0, ("PostgreSQL", lambda k: create_database(server_url, f"{prefix}_{k}")))
        try:
            for name, make_db in targets:
                for k, n in enumerate(counts):
                    r = run(make_db(k), args.candidates, n, tmp, seed=seed0 + k)
                    rows.append((name, n, r))
                    print(f"{name:10s} {what} {n} {r}", flush=True)
        finally:
            if pg is not None:
                pg.__exit__(None, None, None)
    print()
    return rows


def scale_out(args) -> None:
    """Several processes on one database (PostgreSQL; SQLite for a single machine)."""
    rows = _sweep(args, args.processes, processes_run, "scale", 300, "processes")
    print("| database | processes | candidates | finished | answers | answers/s | p50 ms | p99 ms | 5xx | "
          "racing duplicates | one process killed | verification problems |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, n_proc, r in rows:
        print(f"| {name} | {n_proc} | {r['candidates']} | {r['finished']} | {r['answers']} | {r['throughput']:.0f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['server_errors']} | {r['duplicates']} | "
              f"{'yes' if r['killed'] else 'no'} | {r['problems']} |")


def workers_table(args) -> None:
    """``adaptive serve --workers N`` on one database (PostgreSQL; SQLite for a single machine)."""
    rows = _sweep(args, args.workers, workers_run, "workers", 500, "--workers")
    print("| database | uvicorn workers | candidates | finished | answers | answers/s | p50 ms | p99 ms | 5xx | "
          "verification problems |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, n_workers, r in rows:
        print(f"| {name} | {n_workers} | {r['candidates']} | {r['finished']} | {r['answers']} | "
              f"{r['throughput']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['server_errors']} | "
              f"{r['problems']} |")


if __name__ == "__main__":
    main()
