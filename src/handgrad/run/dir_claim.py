"""Each run and each sweep owns its dir: claimed by an atomic `mkdir`, locked while the run lives.

- A new dir is claimed with `mkdir` without `exist_ok`, which succeeds in exactly one process
  (on one machine and on a shared file system): a run that finds its time-stamped name taken, by
  a run started in the same second, takes `<name>_1`, `<name>_2`, ... instead. So runs started
  together never share a dir.
- A live run holds an advisory lock (`flock`) on `<run dir>/.lock`, which holds its PID. The
  operating system releases it when the process ends, however it ends (`kill -9` too), so a lock
  is never stale. `resume=` of a locked dir, or a second run into it, is refused naming the PID.
- A dir the user names (`hydra.run.dir=...`) that already holds another run's files is refused:
  a run never writes into a dir another run created, except through `resume=`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from handgrad.errors import RunDirTaken

LOCK_FILE = ".lock"
MAX_SUFFIX = 1000  # runs started in one second that one name can take before giving up
_held: dict[Path, int] = {}  # the dirs this process holds the lock of -> the lock file's fd


def claim_new(path: Path) -> Path:
    """Create `path` (and its parents) and return it; when another run has it already, the first
    of `<path>_1`, `<path>_2`, ... that this call creates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in range(MAX_SUFFIX):
        candidate = path if suffix == 0 else path.with_name(f"{path.name}_{suffix}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunDirTaken(f"{path} and {MAX_SUFFIX - 1} numbered dirs beside it exist; clean up")


def lock(run_dir: Path, purpose: str) -> None:
    """Hold `run_dir`'s lock until `release` or the end of this process (again: nothing to do).

    Raises RunDirTaken naming the PID that holds it; `purpose` says what the caller wanted
    ("resume=<dir>", "hydra.run.dir=<dir>", ...)."""
    run_dir = run_dir.resolve()
    if run_dir in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        pid = _pid_in(fd)
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        raise RunDirTaken(
            f"{purpose}: {run_dir} belongs to a run that is still running ({_process(pid)}); "
            "wait for it to end or stop it first"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[run_dir] = fd


def release(run_dir: Path) -> None:
    """Give up `run_dir`'s lock (a sweep's job when it ends); nothing if this process has none."""
    fd = _held.pop(run_dir.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the file releases the flock


@contextlib.contextmanager
def held_while_running(run_dir: Path):
    """`run_dir`'s lock for the block (a sweep's job); a lock this process held before is kept.

    Under SLURM only the job's first task takes it: its other tasks are the same run."""
    if int(os.environ.get("SLURM_PROCID", "0")) > 0:
        yield
        return
    taken = run_dir.resolve() not in _held
    lock(run_dir, f"the job dir {run_dir}")
    try:
        yield
    finally:
        if taken:
            release(run_dir)


def live_holder(run_dir: Path) -> int | None:
    """The PID of another live process holding `run_dir`'s lock (0 when it wrote none yet), or
    None when no other process holds it."""
    path = run_dir.resolve() / LOCK_FILE
    if run_dir.resolve() in _held or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _pid_in(fd)
    finally:
        os.close(fd)
    return None


def holds_other_files(run_dir: Path) -> bool:
    """Anything in `run_dir` besides its lock file: another run's config, logs, checkpoints."""
    return run_dir.is_dir() and any(entry.name != LOCK_FILE for entry in run_dir.iterdir())


def _pid_in(fd: int) -> int:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return int(text) if text.isdigit() else 0


def _process(pid: int) -> str:
    return f"PID {pid}" if pid else "a process that is just starting"


def claim_output_dir(cfg: DictConfig, argv: list[str], multirun: bool, resuming: bool) -> list[str]:
    """`argv` with the dir its run (or sweep) writes into claimed and pinned for Hydra.

    A run dir (sweep dir) from the config's time-stamped pattern is claimed new (`claim_new`)
    and passed on as `hydra.run.dir=` (`hydra.sweep.dir=`). A run's dir, and a sweep dir the
    command line names, are locked for this process's life. A named dir that holds another run's
    files is refused with nothing written into it, unless `resuming` (resume= locked it already)
    or it is a search's sweep dir (an Optuna study goes on there, each trial in a new dir)."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    path = _pattern_resolved(cfg, key)
    if not any(arg.startswith(f"{key}=") for arg in argv):
        path = claim_new(path)
        if not multirun:  # a sweep's jobs lock their own dirs
            lock(path, f"{key}={path}")
        return [*argv, f"{key}='{path}'"]
    sweeper = str(OmegaConf.select(cfg, "hydra.sweeper._target_"))
    check = not resuming and not (multirun and "BasicSweeper" not in sweeper)
    if check:
        _refuse_if_taken(key, path, multirun)
    lock(path, f"{key}={path}")
    if check:
        _refuse_if_taken(key, path, multirun)  # again: another run may have written meanwhile
    return argv


def _pattern_resolved(cfg: DictConfig, key: str) -> Path:
    """The dir `key` names; `${hydra:...}` in it reads the config's own Hydra keys (the global
    Hydra config is put back after)."""
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(cfg)
    try:
        return Path(str(OmegaConf.select(cfg, key)))
    finally:
        hydra_config.cfg = previous


def _refuse_if_taken(key: str, path: Path, multirun: bool) -> None:
    """RunDirTaken when `path` holds another run's (an earlier sweep's) files."""
    if not holds_other_files(path):
        return
    release(path)
    pid = live_holder(path)
    if pid is not None:
        raise RunDirTaken(
            f"{key}={path} belongs to a run that is still running ({_process(pid)}); name a new dir"
        )
    what = "an earlier sweep's jobs" if multirun else "another run's files"
    raise RunDirTaken(
        f"{key}={path} already holds {what}; name a new dir, or continue a run with "
        "resume=<its dir>"
    )
