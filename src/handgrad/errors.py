"""The exceptions a user can cause. Entry points print them as one line and exit with code 2."""

import math
import os
import sys


class HandgradError(Exception):
    """A mistake in the user's input: the message names the problem and the fix."""


class ConfigError(HandgradError):
    """A config value or command-line override that cannot work."""


class DataError(HandgradError):
    """A dataset file that is missing, damaged or unusable."""


class CheckpointError(HandgradError):
    """A checkpoint that is missing, damaged or does not fit the model."""


class RunDirError(HandgradError):
    """The run dir cannot be written (a full disk, a quota, a read-only or vanished mount)."""


class RunDirTaken(HandgradError):
    """The run dir belongs to another run: one still running, or one whose files it holds."""


class TrainingDiverged(HandgradError):
    """Training produced a non-finite loss or weights; `last_checkpoint` is the last finite one."""

    def __init__(self, message: str, last_checkpoint: str | None = None):
        super().__init__(message)
        self.last_checkpoint = last_checkpoint


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds."""
    if not condition:
        raise ConfigError(message)


def is_number(value) -> bool:
    """A finite int or float (not a bool, not a string)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def exception_chain(exc: BaseException | None):
    """`exc`, then the exception it was raised from or while handling, and so on."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def find_user_error(exc: BaseException) -> HandgradError | None:
    """The HandgradError behind `exc`, also when a library wrapped it (Hydra's instantiate does)."""
    return next((e for e in exception_chain(exc) if isinstance(e, HandgradError)), None)


def first_line(exc: BaseException) -> str:
    """The first line of `exc`'s message ("" when it has none)."""
    return (str(exc).strip().splitlines() or [""])[0]


def exit_for_user_error(exc: BaseException) -> None:
    """Print a user mistake as one line and exit 2; re-raise anything else (a bug: keep the trace).

    Call from an `except` block. HYDRA_FULL_ERROR=1 keeps the full traceback for user errors too.
    """
    user_error = find_user_error(exc)
    if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise exc
    _close_progress_bars()
    print(f"error: {user_error}", file=sys.stderr)
    raise SystemExit(2)


def _close_progress_bars() -> None:
    """Close open tqdm bars now: one closed at exit would print below the error line."""
    tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
