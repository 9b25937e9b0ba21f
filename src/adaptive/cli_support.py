"""The command line's one error path and its flag validators.

Every subcommand runs through :func:`run_command`: an expected failure (a bad file, a permission, an
encoding, a missing optional package, bad input, an interrupted pipe, Ctrl-C) becomes one line on stderr
naming the file, flag or value and what to do, and a non-zero exit status; the user never sees a traceback.
Flags are checked by the argparse ``type=`` functions below before any work starts.

Exit statuses: 0 done; 1 a check found problems or a file could not be used; 2 bad input or usage;
70 an internal error (a bug: the one line asks for a report); 130 interrupted (Ctrl-C); 141 the reader of
the output went away (``adaptive demo | head``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

from .exceptions import AdaptiveError

__all__ = ["run_command", "describe_error", "port", "positive_int", "nonnegative_int", "finite_float",
           "positive_float", "bounded_int", "check_port_free", "EXIT_USAGE", "EXIT_FAILURE", "EXIT_INTERNAL",
           "EXIT_INTERRUPTED", "EXIT_PIPE"]

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_PIPE = 1, 2, 70, 130, 141

#: which extra brings an optional module
_EXTRA_OF = {"matplotlib": "plots", "dask": "simulation", "distributed": "simulation", "tqdm": "simulation",
             "fastapi": "service", "uvicorn": "service", "starlette": "service", "psycopg": "postgres",
             "pandas": None, "defusedxml": "qti"}


def _path_of(err: OSError) -> str:
    name = err.filename if err.filename is not None else err.filename2
    return f"{name}: " if name is not None else ""


def describe_error(err: BaseException) -> tuple[str, int]:
    """One line and an exit status for an exception a command raised."""
    if isinstance(err, AdaptiveError | ValueError) and not isinstance(err, UnicodeError):
        return f"error: {err}", EXIT_USAGE
    if isinstance(err, FileNotFoundError):
        return f"error: {_path_of(err)}no such file or directory; check the path", EXIT_FAILURE
    if isinstance(err, IsADirectoryError):
        return f"error: {_path_of(err)}is a directory; give a file", EXIT_FAILURE
    if isinstance(err, NotADirectoryError):
        return f"error: {_path_of(err)}a part of the path is a file, not a directory", EXIT_FAILURE
    if isinstance(err, FileExistsError):
        return f"error: {_path_of(err)}already exists as a file; give a directory name that is free", EXIT_FAILURE
    if isinstance(err, PermissionError):
        return f"error: {_path_of(err)}permission denied", EXIT_FAILURE
    if isinstance(err, UnicodeError):
        return (f"error: a file is not UTF-8 text ({err}); save it as UTF-8 (the message of the reader names the "
                "file when it can)", EXIT_FAILURE)
    if isinstance(err, OSError):
        return f"error: {_path_of(err)}{err.strerror or err}", EXIT_FAILURE
    if isinstance(err, ModuleNotFoundError | ImportError):
        mod = (getattr(err, "name", None) or "").split(".")[0]
        if not mod and str(err):  # our own message already says which package and how to install it
            return f"error: {err}", EXIT_FAILURE
        extra = _EXTRA_OF.get(mod)
        how = f"pip install 'adaptive-cat[{extra}]'" if extra else f"pip install {mod}" if mod else "install it"
        return f"error: this needs the package {mod or '?'}, which is not installed: {how}", EXIT_FAILURE
    if isinstance(err, MemoryError):
        return ("error: out of memory; use fewer simulees, a smaller grid or smaller chunks, or a machine with "
                "more memory", EXIT_FAILURE)
    if isinstance(err, RecursionError):
        return "error: the input is nested too deeply to read; check the file's structure", EXIT_USAGE
    return (f"internal error: {type(err).__name__}: {err} -- please report it with the command you ran",
            EXIT_INTERNAL)


def run_command(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run one subcommand; every failure becomes one line on stderr and an exit status, never a traceback."""
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (``| head``): stop quietly; point stdout at devnull so that the
        # interpreter's final flush does not fail again
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_PIPE
    except Exception as err:  # the one place that turns any exception into a line
        line, status = describe_error(err)
        print(line, file=sys.stderr)
        return status


# --------------------------------------------------------------------------- argparse types


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    return value


def finite_float(text: str) -> float:
    """A finite number."""
    v = _number(text, float, "a number")
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = finite_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return v


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """A whole number in ``[lo, hi]``."""

    def check(text: str) -> int:
        v = _number(text, int, "a whole number")
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}")
        return v

    check.__name__ = f"whole number {lo}..{hi}"
    return check


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return bounded_int(1, sys.maxsize)(text)


def nonnegative_int(text: str) -> int:
    """A whole number >= 0."""
    return bounded_int(0, sys.maxsize)(text)


def port(text: str) -> int:
    """A TCP port 1..65535."""
    return bounded_int(1, 65535)(text)


def check_port_free(host: str, port_number: int) -> None:
    """Refuse a port that is taken before saying we serve on it (uvicorn would fail after the banner)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port_number, type=socket.SOCK_STREAM)
    except OSError as err:
        raise AdaptiveError(f"--host {host!r}: cannot resolve it ({err.strerror or err})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as err:
            raise AdaptiveError(f"--host {host} --port {port_number}: cannot listen there ({err.strerror or err}); "
                                "is another server running? choose another --port") from None


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A right-aligned text table with a dashed rule under the header."""
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def parse_prior_args(specs):
    """``--prior`` values: one set name, or NAME=DIST pairs, as :func:`adaptive.calibrate` takes them."""
    if not specs:
        return None
    if len(specs) == 1 and "=" not in specs[0]:
        return specs[0]
    out = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        if not value:
            raise AdaptiveError(f"--prior {spec!r}: write NAME=DIST, e.g. c='beta(5, 17)', or a set name (3pl, bilog)")
        out[name.strip()] = value.strip()
    return out


def model_name_arg(text: str) -> str:
    """argparse type: a model name in any case or by an alias, as its canonical name."""
    from .irt.registry import canonical_model

    if text.strip().lower() in ("nominal", "nrm"):
        return "nominal"  # Bock's nominal model: calibrated by adaptive.calibration.multidim, not an ItemBank model
    try:
        return canonical_model(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def check_output_paths(*paths) -> None:
    """Refuse, before any work, an output file whose folder does not exist (``None`` entries are skipped)."""
    from pathlib import Path

    for p in paths:
        if p is None:
            continue
        parent = Path(p).expanduser().resolve().parent
        if not parent.is_dir():
            raise AdaptiveError(f"{p}: the folder {str(parent)!r} does not exist; create it or write elsewhere")


def date_arg(text: str) -> float:
    """argparse type: a date or time (ISO 8601, UTC when no zone is given) as POSIX seconds."""
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def bounded_float(lo: float, hi: float, what: str) -> Callable[[str], float]:
    """argparse type: a number strictly between ``lo`` and ``hi`` (``what`` names it in the message)."""

    def check(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {what}") from None
        if not lo < v < hi:
            raise argparse.ArgumentTypeError(f"{text} is not {what} (between {lo:g} and {hi:g})")
        return v

    return check

