"""Reading the project's text files (CSV, JSON, TOML) with one error shape: what, which file, what to do.

A missing file, a directory, a file that cannot be read or is not UTF-8 text raises the caller's typed error
(:class:`~adaptive.exceptions.AdaptiveError` subclass) naming the file, instead of an ``OSError`` or a
``UnicodeDecodeError`` that names none.
"""

from __future__ import annotations

import os
from pathlib import Path

from .exceptions import AdaptiveError

__all__ = ["MAX_FILE_MB", "read_text"]

#: the largest file read, in MB (banks and response files; settings files are held to 16 MB): a bound so that a
#: wrong path (a disk image, a log) is refused at once instead of filling memory. ``ADAPTIVE_MAX_FILE_MB`` raises it.
MAX_FILE_MB = 4096
SETTINGS_MAX_MB = 16


def _limit_mb(kind_limit: float | None) -> float:
    """The bound for one kind of file: ``ADAPTIVE_MAX_FILE_MB`` when set, else the kind's, else MAX_FILE_MB."""
    try:
        return float(os.environ["ADAPTIVE_MAX_FILE_MB"])
    except (KeyError, ValueError):
        return MAX_FILE_MB if kind_limit is None else kind_limit


def read_text(path: str | Path, what: str, error: type[AdaptiveError], max_mb: float | None = None) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark is dropped); ``what`` names the file's role in messages.

    Files over ``max_mb`` (default :data:`MAX_FILE_MB`; ``ADAPTIVE_MAX_FILE_MB`` overrides) are refused unread.
    """
    path = Path(path)
    where = f"{what} {str(path)!r}"
    limit = _limit_mb(max_mb)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # the read below reports what is wrong with the path
    if size > limit * 1e6:
        raise error(f"{where} is {size / 1e6:,.0f} MB, over the {limit:,.0f} MB a {what} may have; check the path "
                    "(or set ADAPTIVE_MAX_FILE_MB to allow more)")
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{where} does not exist; check the path") from None
    except IsADirectoryError:
        raise error(f"{where} is a directory; give a file") from None
    except PermissionError:
        raise error(f"{where} cannot be read: permission denied") from None
    except UnicodeDecodeError as err:
        raise error(f"{where} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8") from None
    except OSError as err:
        raise error(f"{where} cannot be read: {err.strerror or err}") from None
