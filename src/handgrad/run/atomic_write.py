"""Files of a run dir replaced whole or not at all (checkpoints, metrics.json)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(path: Path, mode: str = "wb"):
    """A handle to a temp file beside `path`. When the block ends without an error the file is
    flushed, fsynced and renamed over `path` (atomic within one filesystem); otherwise it is
    removed. Either way `path` holds its old content or the new one, never a part of it, even when
    the process is killed mid-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open(mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
