"""Load and fault testing of a running delivery service (tests at a small size, benchmarks at full).

- :class:`ServerProcess` runs ``adaptive serve`` in a child process on loopback and can kill it
  with SIGKILL and start it again on the same port and database.
- :func:`run_candidates` drives simulated candidates concurrently over HTTP (one thread and one
  connection each). A candidate of ability θ picks the key with the model's probability, retries
  every request that fails for lack of a server (same body, so the server acknowledges it once),
  and records each acknowledged answer, the latency of each request and every response body.
- :func:`verify_sessions` compares the database with what the candidates were told: every
  acknowledged answer stored exactly once, nothing stored that was not acknowledged, and each
  session's stored result equal to a replay of its stored answers.

Needs httpx (in the test extra).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adaptive.bank import ItemBank

__all__ = ["ServerProcess", "CandidateLog", "run_candidates", "verify_sessions", "free_port", "LoadSummary",
           "summarize", "postgres_bindir", "temporary_postgres", "create_database"]

API = "/api/v1"
#: the state key the load-test servers sign with (and the verification checks)
STATE_KEY = "load-test-state-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bindir() -> str | None:
    """The folder of PostgreSQL's server programs (Debian: /usr/lib/postgresql/N/bin), or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@contextmanager
def temporary_postgres(bindir: str | None = None, max_connections: int = 300):
    """A PostgreSQL server of our own on 127.0.0.1 (a new cluster in a temporary folder, trust
    authentication, removed afterwards); yields ``postgresql://postgres@127.0.0.1:PORT``."""
    bindir = bindir or postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    base = tempfile.mkdtemp(prefix="adaptive-pg-")
    run_as = []
    if os.geteuid() == 0:  # the server refuses to run as root
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), free_port()

    def run(*cmd, check=True):
        subprocess.run([*run_as, *cmd], check=check, capture_output=True, timeout=120)

    try:
        run(f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(base, "server.log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections={max_connections}", "start")
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            run(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server; returns its URL."""
    import psycopg

    with psycopg.connect(server_url + "/postgres", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


class ServerProcess:
    """``python -m adaptive serve`` in a child process, on 127.0.0.1 and a fixed port."""

    def __init__(self, db: str, *, bank: str | Path | None = None, admin_key: str | None = None,
                 port: int | None = None, log_path: str | Path | None = None, extra: tuple = (),
                 practice: bool = True, rate_limits: bool = False, state_key: str | None = STATE_KEY):
        self.db, self.bank, self.admin_key = db, bank, admin_key
        extra = (*(("--practice",) if practice else ()), *(() if rate_limits else ("--no-rate-limit",)),
                 *(("--state-key", state_key) if state_key else ()), *extra)
        self.port = port or free_port()
        self.log_path = log_path
        self.extra = tuple(extra)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        import httpx

        cmd = [sys.executable, "-m", "adaptive", "serve", "--db", self.db, "--port", str(self.port), *self.extra]
        if self.bank is not None:
            cmd += ["--bank", str(self.bank)]
        env = dict(os.environ)
        env.pop("ADAPTIVE_ADMIN_KEY", None)
        if self.admin_key:
            env["ADAPTIVE_ADMIN_KEY"] = self.admin_key
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - child keeps it
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"adaptive serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + API + "/health", timeout=1.0).status_code == 200:
                    self.starts += 1
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"adaptive serve did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class CandidateLog:
    """What one simulated candidate sent and was told."""

    index: int
    theta: float
    session_id: str | None = None
    token: str | None = None
    acked: list = field(default_factory=list)  # (seq, item_id, choice letter)
    latencies: list = field(default_factory=list)  # seconds of each successful answer request
    bodies: list = field(default_factory=list)  # every response body (text)
    retries: int = 0
    server_errors: int = 0  # 5xx answers (retried; a correct service gives none)
    duplicates: list = field(default_factory=list)  # statuses of answers sent twice at once to another process
    result: dict | None = None
    error: str | None = None


def _choose(bank: ItemBank, arrays, shown: dict, theta: float, rng: np.random.Generator) -> tuple[str, str]:
    """An answer drawn from the model at ``theta``: (the letter shown to send, the authored option's letter)."""
    i = bank.index[shown["item_id"]]
    item = bank.items[i]
    n_opt = len(item.content.options)
    probs = arrays.prob(np.array([theta]))[0, i, : item.n_cat]
    score = int(rng.choice(item.n_cat, p=probs / probs.sum()))
    if item.n_cat > 2 or item.content.key is None:
        authored = score
    else:
        key = ord(item.content.key) - ord("A")
        authored = key if score == 1 else int(rng.choice([k for k in range(n_opt) if k != key]))
    label = next(o["label"] for o in shown["options"] if o["text"] == item.content.options[authored])
    return label, chr(ord("A") + authored)


def _one_candidate(base_urls, bank, arrays, log: CandidateLog, seed, deadline, stop_event,
                   double_submit: float = 0.0, code: str | None = None) -> CandidateLog:
    import httpx

    rng = np.random.default_rng([seed, log.index])
    clients = [httpx.Client(base_url=u, timeout=30.0) for u in base_urls]
    alive = list(clients)
    pick = np.random.default_rng([seed, log.index, 1])  # which process serves each request (a load balancer)

    def request(method, path, body=None):
        wait = 0.05
        while True:
            if time.monotonic() > deadline or stop_event.is_set():
                raise TimeoutError(f"candidate {log.index}: gave up on {method} {path}")
            client = alive[int(pick.integers(len(alive)))]
            t0 = time.perf_counter()
            try:
                r = client.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                log.retries += 1
                if len(alive) > 1:  # a load balancer takes a backend that refuses connections out of rotation
                    alive.remove(client)
                time.sleep(wait)
                wait = min(wait * 2, 1.0)
                continue
            if r.status_code >= 500:
                log.server_errors += 1
                log.retries += 1
                time.sleep(wait)
                continue
            log.bodies.append(r.text)
            return r, time.perf_counter() - t0

    def duplicate(path, body):
        """The same answer at the same moment through another process (a browser's retry racing the first)."""
        client = alive[int(pick.integers(len(alive)))]
        try:
            log.duplicates.append(client.post(path, json=body, headers=headers).status_code)
        except httpx.TransportError:
            log.duplicates.append(None)

    headers: dict = {}
    try:
        if code is None:  # a practice-mode server
            r, _ = request("POST", API + "/sessions", {"candidate": f"load-{log.index}"})
        else:  # a launch code: a retry after a lost response resumes the attempt the first call started
            r, _ = request("POST", API + "/launch", {"code": code})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"start: {r.status_code} {r.text}")
        data = r.json()
        log.session_id, log.token = data["session_id"], data["token"]
        headers["Authorization"] = f"Bearer {log.token}"
        item = data["item"]
        while item is not None:
            choice, authored = _choose(bank, arrays, item, log.theta, rng)
            body = {"item_id": item["item_id"], "seq": item["seq"], "choice": choice}
            path = f"{API}/sessions/{log.session_id}/answers"
            twin = None
            if double_submit and pick.random() < double_submit:
                twin = threading.Thread(target=duplicate, args=(path, body))
                twin.start()
            r, dt = request("POST", path, body)
            if twin is not None:
                twin.join()
            if r.status_code == 409 and twin is not None:  # the twin recorded it first: the answer stands
                r, dt = request("GET", f"{API}/sessions/{log.session_id}/item")
                state = r.json()
                log.acked.append((item["seq"], item["item_id"], authored))
                log.latencies.append(dt)
                item = None if state["finished"] else state["item"]
                continue
            if r.status_code != 200:
                raise RuntimeError(f"answer seq {item['seq']}: {r.status_code} {r.text}")
            ack = r.json()
            log.acked.append((item["seq"], item["item_id"], authored))
            log.latencies.append(dt)
            item = None if ack["finished"] else ack["next"]
        r, _ = request("GET", f"{API}/sessions/{log.session_id}/result")
        log.result = r.json() if r.status_code == 200 else None
    except Exception as err:  # noqa: BLE001 - reported per candidate
        log.error = f"{type(err).__name__}: {err}"
    finally:
        for c in clients:
            c.close()
    return log


def run_candidates(base_url, bank: ItemBank, thetas, *, seed: int = 0, timeout: float = 300.0,
                   on_answer=None, double_submit: float = 0.0, codes: list[str] | None = None) -> list[CandidateLog]:
    """Run one concurrent simulated candidate per θ against the service at ``base_url``.

    ``base_url`` may be a list of the URLs of several processes serving one database: each request goes to
    one of them at random (as through a load balancer), and a request whose process is gone is retried on
    another. With ``double_submit`` = p, that share of answers is also sent at the same moment through
    another process (``CandidateLog.duplicates`` records those statuses). ``on_answer(total_acked)`` is
    called from a monitor thread as answers are acknowledged (for killing a server mid-run). ``codes``:
    one launch code per candidate (otherwise the server must run in practice mode).
    """
    base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
    thetas = np.asarray(thetas, dtype=float).ravel()
    arrays = bank.compile()
    logs = [CandidateLog(k, float(t)) for k, t in enumerate(thetas)]
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    done = threading.Event()

    def monitor():
        while not done.wait(0.02):
            if on_answer is not None:
                on_answer(sum(len(lg.acked) for lg in logs))

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(logs))) as pool:
            list(pool.map(lambda lg: _one_candidate(base_urls, bank, arrays, lg, seed, deadline, stop, double_submit,
                                                    None if codes is None else codes[lg.index]), logs))
    finally:
        done.set()
        stop.set()
        mon.join()
    return logs


def register_candidates(db: str, n: int) -> list[str]:
    """Register ``n`` eligibilities on the service's database (the bundled CMCS exam when it holds no version);
    returns their launch codes."""
    from adaptive.cli_service import _delivery

    delivery = _delivery(db)
    try:
        return [delivery.register(f"load-{k}")["launch_code"] for k in range(n)]
    finally:
        delivery.store.close()


def verify_sessions(db: str, logs: list[CandidateLog], state_key: str | None = STATE_KEY) -> list[str]:
    """Problems found comparing the database with what candidates were told (empty: all good); with the servers'
    state key, every session's signed rows must verify too."""
    from adaptive.service.delivery import Delivery
    from adaptive.service.store import open_store

    store = open_store(db)
    delivery = Delivery(store, state_key=state_key)
    problems = []
    try:
        for lg in logs:
            if lg.error or lg.session_id is None:
                problems.append(f"candidate {lg.index}: {lg.error or 'no session'}")
                continue
            trail = delivery.audit(lg.session_id)
            if state_key is not None and trail["session"]["integrity"] != "verified":
                problems.append(f"session {lg.session_id}: integrity {trail['session']['integrity']}")
            stored = [(a["seq"], a["item_id"], chr(ord("A") + int(a["choice"]))) for a in trail["answers"]]
            if stored != lg.acked:
                lost = [a for a in lg.acked if a not in stored]
                extra = [a for a in stored if a not in lg.acked]
                problems.append(f"session {lg.session_id}: {len(lost)} acknowledged answer(s) not stored {lost[:3]}, "
                                f"{len(extra)} stored answer(s) never acknowledged {extra[:3]}")
            if [a[0] for a in stored] != list(range(1, len(stored) + 1)):
                problems.append(f"session {lg.session_id}: stored steps are not 1..{len(stored)}")
            if trail["session"]["status"] != "finished":
                problems.append(f"session {lg.session_id}: not finished")
                continue
            replayed = delivery.replay(lg.session_id).result()
            want = trail["session"]["result"]
            for name in ("decision", "scaled_score", "p_pass", "theta", "se", "stopped_by"):  # the stored result
                got = getattr(replayed, name)
                same = got == want[name] or (isinstance(got, float) and abs(got - want[name]) <= 1e-12)
                if not same:
                    problems.append(f"session {lg.session_id}: {name} stored {want[name]!r}, replay {got!r}")
            if lg.result is None or any(lg.result[k] != want[k] for k in ("decision", "scaled_score")):
                problems.append(f"session {lg.session_id}: the result the candidate got differs from the stored one")
    finally:
        store.close()
    return problems


@dataclass(frozen=True)
class LoadSummary:
    candidates: int
    finished: int
    answers: int
    seconds: float
    throughput: float  # acknowledged answers per second
    p50_ms: float
    p99_ms: float
    retries: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def __str__(self) -> str:
        return json.dumps(self.to_dict())


def summarize(logs: list[CandidateLog], seconds: float) -> LoadSummary:
    lat = np.concatenate([np.asarray(lg.latencies) for lg in logs]) if logs else np.zeros(0)
    answers = int(sum(len(lg.acked) for lg in logs))
    return LoadSummary(
        candidates=len(logs), finished=sum(lg.result is not None for lg in logs), answers=answers,
        seconds=float(seconds), throughput=answers / seconds if seconds > 0 else float("nan"),
        p50_ms=float(np.percentile(lat, 50) * 1e3) if lat.size else float("nan"),
        p99_ms=float(np.percentile(lat, 99) * 1e3) if lat.size else float("nan"),
        retries=int(sum(lg.retries for lg in logs)),
    )
