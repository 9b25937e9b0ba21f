"""Reading the project's text files (CSV, JSON, TOML) with one error shape: what, which file, what to do.

A missing file, a directory, a file that cannot be read or is not UTF-8 text raises the caller's typed error
(:class:`~adaptive.exceptions.AdaptiveError` subclass) naming the file, instead of an ``OSError`` or a
``UnicodeDecodeError`` that names none.
"""

from __future__ import annotations

from pathlib import Path

from .exceptions import AdaptiveError

__all__ = ["read_text"]


def read_text(path: str | Path, what: str, error: type[AdaptiveError]) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark is dropped); ``what`` names the file's role in messages."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
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
