"""The service's subcommands: ``adaptive serve`` and ``adaptive candidates`` (eligibility and launch codes).

``adaptive candidates`` works on the service's database directly (the same one ``serve --db``
uses), so an exam program can register candidates from a script without the HTTP API:

    adaptive candidates register --db sqlite:///sessions.db --candidate C-1001 --time-multiplier 1.5
    adaptive candidates code 1 --db sqlite:///sessions.db        # a new code: lost, or the next attempt
    adaptive candidates list --db sqlite:///sessions.db [--candidate C-1001]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .cli_support import bounded_int, check_port_free, date_arg, port
from .exceptions import AdaptiveError
from .resources import pool_path

__all__ = ["WORKER_CONFIG", "add_service_commands", "worker_app"]


def _service_modules():
    try:
        import uvicorn

        from .service.app import create_app
    except ImportError:
        raise AdaptiveError("adaptive serve needs the service extra: pip install 'adaptive-cat[service]'") from None
    return uvicorn, create_app


def _rate(text: str) -> tuple[str, tuple[int, float]]:
    from .service.ratelimit import RateLimits, parse_rate

    name, sep, value = text.partition("=")
    names = list(RateLimits.__dataclass_fields__)
    if not sep or name not in names:
        raise argparse.ArgumentTypeError(f"{text!r} is not KIND=N/SECONDS with KIND one of {', '.join(names)}")
    try:
        return name, parse_rate(value)
    except AdaptiveError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_serve(args) -> int:
    uvicorn, create_app = _service_modules()
    from .service import open_store
    from .service.ratelimit import RateLimits

    if args.workers > 1 and args.db.rstrip("/").endswith(":memory:"):
        raise AdaptiveError("--workers needs a database the worker processes share: give --db sqlite:///FILE or "
                            "postgresql://...; an in-memory database would be one per process")
    store = open_store(args.db)
    bank = args.bank
    if bank is None:
        from .service.delivery import Delivery

        if not Delivery(store).versions():  # an empty database starts with the bundled CMCS exam
            bank = pool_path("cmcs")
    admin_key = args.admin_key or os.environ.get("ADAPTIVE_ADMIN_KEY") or None
    limits = RateLimits.off() if args.no_rate_limit else \
        RateLimits(**dict(RateLimits().__dict__, **dict(args.rate or [])))
    options = dict(admin_key=admin_key, max_body=args.max_body, practice=args.practice, rate_limits=limits,
                   state_key=args.state_key or os.environ.get("ADAPTIVE_STATE_KEY") or None)
    app = create_app(store, bank=bank, design=args.design, **options)  # stores and activates the bank version once
    check_port_free(args.host, args.port)
    mode = "practice mode: open starts allowed" if args.practice else "launch codes required"
    workers = f"; {args.workers} worker processes" if args.workers > 1 else ""
    print(f"adaptive: serving on http://{args.host}:{args.port}/ (API documentation at /docs; database "
          f"{store.kind}; {mode}; admin endpoints {'enabled' if admin_key else 'disabled: no --admin-key'}{workers})",
          file=sys.stderr, flush=True)
    if args.workers > 1:  # uvicorn's worker processes each build the app from the environment, on the same database
        store.close()
        os.environ[WORKER_CONFIG] = json.dumps({"db": args.db, **options, "rate_limits": limits.__dict__})
        uvicorn.run("adaptive.cli_service:worker_app", factory=True, workers=args.workers, host=args.host,
                    port=args.port, log_level=args.log_level)
        return 0
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


#: the environment variable that hands ``adaptive serve --workers N``'s settings to each worker process
WORKER_CONFIG = "ADAPTIVE_SERVE_WORKER_CONFIG"


def worker_app():
    """The application of one uvicorn worker process of ``adaptive serve --workers N`` (settings from the
    environment; the bank version was stored by the parent process)."""
    from .service.app import create_app
    from .service.ratelimit import RateLimits

    cfg = json.loads(os.environ[WORKER_CONFIG])
    limits = {k: None if v is None else tuple(v) for k, v in cfg.pop("rate_limits").items()}
    return create_app(cfg.pop("db"), rate_limits=RateLimits(**limits), **cfg)


def _delivery(db: str):
    from .service import open_store
    from .service.delivery import Delivery

    delivery = Delivery(open_store(db))
    if not delivery.versions():
        delivery.add_version(*_bundled_cmcs(), source="bundled cmcs pool", activate=True)
    return delivery


def _bundled_cmcs():
    from .bank import ItemBank
    from .cat import ExamDesign

    pool = pool_path("cmcs")
    return ItemBank.load(pool), ExamDesign.load(pool / "design.json")


def _print_eligibility(e: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(e, indent=2))
        return
    print(f"eligibility {e['eligibility_id']}: candidate {e['candidate_id']}, bank version {e['bank_version']}, "
          f"window {e['window_start']} to {e['window_end']} (UTC), attempts {e['attempts_used']} of "
          f"{e['attempts_allowed']} used, time x{e['time_multiplier']:g}" + (f", site {e['site']}" if e.get("site")
                                                                            else ""))
    for a in e["attempts"]:
        print(f"  attempt {a['attempt']}: session {a['session_id']} {a['status']}"
              + (f", ended {a['finished_at']}" if a["finished_at"] else ""))
    if "launch_code" in e:
        print(f"launch code for attempt {e['code_attempt']}: {e['launch_code']}  (shown once; give it to the "
              "candidate)")


def cmd_candidates_register(args) -> int:
    d = _delivery(args.db)
    e = d.register(args.candidate, bank_version=args.bank_version, window_start=args.window_start,
                   window_end=args.window_end, window_days=args.window_days, attempts=args.attempts,
                   time_multiplier=args.time_multiplier, note=args.note, site=args.site)
    _print_eligibility(e, args.json)
    return 0


def cmd_candidates_code(args) -> int:
    _print_eligibility(_delivery(args.db).issue_code(args.eligibility), args.json)
    return 0


def cmd_candidates_list(args) -> int:
    rows = _delivery(args.db).eligibilities(args.candidate, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no eligibilities" + (f" for candidate {args.candidate!r}" if args.candidate else ""))
    for e in [] if args.json else rows:
        _print_eligibility(e, False)
    return 0


def add_service_commands(sub) -> None:
    sv = sub.add_parser("serve", help="run the exam delivery service (HTTP API and browser exam page)")
    sv.add_argument("--bank", help="bank file or pool directory (with design.json) to deliver; stored as a version "
                                   "(default: the bundled CMCS pool when the database holds none)")
    sv.add_argument("--design", help="exam design (.json/.toml) when --bank is a file")
    sv.add_argument("--db", default="sqlite:///sessions.db",
                    help="sqlite:///FILE (default sqlite:///sessions.db) or postgresql://USER@HOST:PORT/DB")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=port, default=8000, help="TCP port 1..65535 (default 8000)")
    sv.add_argument("--admin-key", help="API key of the admin endpoints (default: $ADAPTIVE_ADMIN_KEY; none: "
                                        "admin endpoints disabled)")
    sv.add_argument("--state-key", help="secret that signs stored sessions and answers, so a row changed outside the "
                                        "service is refused on resume; every process on one database needs the "
                                        "same (default: $ADAPTIVE_STATE_KEY; none: unsigned)")
    sv.add_argument("--practice", action="store_true", help="practice mode: anyone may start an exam without a "
                    "launch code (default: off, launch codes required)")
    sv.add_argument("--rate-limit", dest="rate", action="append", type=_rate, metavar="KIND=N/SECONDS",
                    help="change a rate limit (repeatable); KIND: start_per_client, start_per_code, answer_per_client, "
                         "answer_per_session; defaults 30/60, 10/60, 1200/60 and 120/60")
    sv.add_argument("--no-rate-limit", action="store_true", help="switch every rate limit off (default: on), e.g. "
                    "for a load test from one address")
    sv.add_argument("--workers", type=bounded_int(1, 64), default=1,
                    help="uvicorn worker processes on this port, all on the one database (default 1); see the "
                         "README's deployment notes")
    sv.add_argument("--max-body", type=bounded_int(256, 10_000_000), default=16_384,
                    help="largest candidate request body in bytes (default 16384)")
    sv.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                    help="server log detail (default: warning)")
    sv.set_defaults(func=cmd_serve)

    c = sub.add_parser("candidates", help="eligibility and launch codes of the delivery service's candidates")
    csub = c.add_subparsers(dest="candidates_command", required=True)
    db_help = "the service's database (default sqlite:///sessions.db, as for serve)"
    r = csub.add_parser("register", help="register a candidate's eligibility and print the first launch code")
    r.add_argument("--candidate", required=True, help="the candidate's id in your program (required)")
    r.add_argument("--db", default="sqlite:///sessions.db", help=db_help)
    r.add_argument("--bank-version", type=bounded_int(1, 2**31 - 1), help="stored bank version (default: the active)")
    r.add_argument("--window-start", type=date_arg, help="first day of the testing window, UTC (default: now)")
    r.add_argument("--window-end", type=date_arg,
                   help="end of the testing window, UTC (default: start + --window-days)")
    r.add_argument("--window-days", type=bounded_int(1, 3650), default=90, help="window length in days (default 90)")
    r.add_argument("--attempts", type=bounded_int(1, 100), help="attempts allowed (default: the design's "
                                                                "retakes.max_attempts)")
    r.add_argument("--time-multiplier", type=float, default=1.0, help="accommodation: the time limit is multiplied "
                                                                      "by this, 1 to 4 (default 1)")
    r.add_argument("--note", help="a note kept with the eligibility (default: none)")
    r.add_argument("--site", help="the test centre; the security report compares answers within a site and window "
                                  "(default: none)")
    r.add_argument("--json", action="store_true", help="print JSON (default: text)")
    r.set_defaults(func=cmd_candidates_register)
    k = csub.add_parser("code", help="a new launch code for an eligibility (a lost code, or the next attempt)")
    k.add_argument("eligibility", type=bounded_int(1, 2**31 - 1), help="the eligibility's number")
    k.add_argument("--db", default="sqlite:///sessions.db", help=db_help)
    k.add_argument("--json", action="store_true", help="print JSON (default: text)")
    k.set_defaults(func=cmd_candidates_code)
    ls = csub.add_parser("list", help="eligibilities with their attempts")
    ls.add_argument("--candidate", help="only this candidate (default: all)")
    ls.add_argument("--db", default="sqlite:///sessions.db", help=db_help)
    ls.add_argument("--limit", type=bounded_int(1, 100_000), default=100, help="at most this many (default 100)")
    ls.add_argument("--json", action="store_true", help="print JSON (default: text)")
    ls.set_defaults(func=cmd_candidates_list)
