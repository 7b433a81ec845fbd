"""The run dir when a run fails: a write that failed (a full disk) as one line, and a dir the run
left unused removed.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from handgrad.errors import CheckpointError, RunDirError, exception_chain
from handgrad.run.checkpoint_reading import load_checkpoint
from handgrad.run.dir_claim import LOCK_FILE

# Errors of a write that fails whichever file it writes (the disk, not the file, is the problem).
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def write_failure(exc: BaseException, run_dir: Path) -> RunDirError | None:
    """A RunDirError for `exc` when an OSError writing `run_dir` is behind it, else None.

    The error names the dir and the cause, says whether `checkpoints/last.ckpt` is intact (it is
    read back to check: saves are atomic, so a failed one leaves the previous file) and gives the
    `resume=` command that continues the run once the disk has room.
    """
    os_error = next((e for e in exception_chain(exc) if _writes(e, run_dir)), None)
    if os_error is None:
        return None
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        checkpoint = load_checkpoint(last, keys=("global_step",))
    except CheckpointError:
        kept = "no checkpoint was saved, so start the run again once the disk has room"
    else:
        kept = (
            f"the last checkpoint {last} (step {checkpoint['global_step']}) is intact; free some "
            f"space, then continue with: python scripts/train.py resume={run_dir}"
        )
    return RunDirError(f"cannot write the run dir {run_dir} ({os_error.strerror}); {kept}")


def _writes(exc: BaseException, run_dir: Path) -> bool:
    """An OSError of a write into `run_dir` (a failed write() names no file: its errno tells)."""
    if not isinstance(exc, OSError):
        return False
    if exc.filename is not None:
        return Path(exc.filename).absolute().is_relative_to(run_dir.absolute())
    return exc.errno in DISK_ERRNOS


def remove_if_unused(run_dir: Path, root: Path) -> None:
    """Remove `run_dir` when it holds nothing but Hydra's `.hydra/`, its lock and empty log files
    (a run that failed before writing anything), then the dirs above it up to `root` that it
    leaves empty (e.g. `runs/<date>/`). A dir holding anything else, and the working dir, stay."""
    if not run_dir.is_dir() or run_dir.resolve() == Path.cwd().resolve():
        return
    for entry in run_dir.iterdir():
        unused_log = entry.suffix == ".log" and entry.is_file() and entry.stat().st_size == 0
        if not (entry.name in (".hydra", LOCK_FILE) or unused_log):
            return
    shutil.rmtree(run_dir)
    root = root.resolve()
    for parent in run_dir.resolve().parents:
        if parent == root or not parent.is_relative_to(root) or any(parent.iterdir()):
            return
        parent.rmdir()
