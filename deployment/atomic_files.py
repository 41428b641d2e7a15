"""Writing files so that a crash never leaves half of one (given code).

A plain ``open(path, "w")`` empties the file first and fills it after: a
crash in between leaves an empty or half-written file where a good one
used to be. The cure is the same everywhere (databases, package managers,
git): write a temporary file in the same folder, flush it to disk, then
rename it over the target. A rename within one file system is atomic, so
every reader sees the old file or the new one, never a mix.

>>> atomic_write_text(Path("stages.json"), '{"history": []}\\n')
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text", "fsync_folder"]


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, so a rename or a new file in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``: readers see the old file or the new one, never a mix.

    The temporary file starts with a dot (``.stages.json.x1y2.tmp``), so a
    crash leaves at most a hidden leftover that no reader mistakes for data.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
