"""Writing report files atomically: readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from pytest_carbon.errors import CarbonError


class OutputError(CarbonError):
    """A report file could not be written; the message names the file and the fix."""


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename; raise OutputError."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~current_umask())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(
            f"{target}: cannot write report ({reason}). Fix: choose a writable path or free space."
        ) from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path: str | Path) -> str | None:
    """Why ``path`` cannot be written (missing or read-only folder), or None when it can."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        return (
            f"{target}: folder {directory} does not exist. Fix: create it or choose another path."
        )
    if target.is_dir():
        return f"{target}: is a folder. Fix: name a file, e.g. {target / 'carbon.json'}."
    if not os.access(directory, os.W_OK):
        return f"{target}: folder {directory} is not writable. Fix: choose a writable path."
    return None
