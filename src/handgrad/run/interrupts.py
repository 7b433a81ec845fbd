"""Ctrl-C and SIGTERM: stop between two batches, save `last.ckpt`, exit 130 / 143."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

# Exit codes of a run stopped by a signal (the shell's 128 + signal number).
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or SIGTERM, save `<dirpath>/last.ckpt` so `resume=<run dir>` can continue.

    Interrupted inside a validation pass, it keeps the last.ckpt of the last finished epoch
    instead: Lightning 2.6 restores a checkpoint taken mid-validation as a finished fit (the
    resumed run stops at once, seen in our interrupt test), so such a state is not worth saving.
    """

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        path = self.dirpath / "last.ckpt"
        if trainer.validating or trainer.sanity_checking:
            what = "kept the last finished epoch's" if path.exists() else "no epoch finished: no"
            message = f"interrupted during validation at step %d: {what} %s"
        else:
            trainer.save_checkpoint(path)
            message = "interrupted at step %d: saved %s"
        if trainer.is_global_zero:
            resume = self.dirpath.parent
            log.warning(message + "; continue with resume=%s", trainer.global_step, path, resume)


@contextlib.contextmanager
def ctrl_c_stops_between_steps(trainer: L.Trainer):
    """While fitting, make Ctrl-C stop training the way SIGTERM does: between two batches.

    Python's default raises KeyboardInterrupt wherever the main thread happens to be, e.g. inside
    the TensorBoard writer's lock, which can then hang the shutdown. Instead the first Ctrl-C sets
    the flag Lightning's own SIGTERM handler sets (`received_sigterm`, checked after every
    training and validation batch) and puts the default handler back, so a second Ctrl-C still
    interrupts at once. Yields a dict whose "sigint" tells whether Ctrl-C was pressed.
    A process that ignores SIGINT (e.g. started in the background) keeps ignoring it.
    """
    pressed = {"sigint": False}

    def stop_at_next_batch(signum, frame):
        pressed["sigint"] = True
        trainer._signal_connector.received_sigterm = True  # Lightning's flag (no public setter)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, stop_at_next_batch)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt_exit_code(trainer: L.Trainer, exc: SystemExit, sigint: bool) -> int | None:
    """The exit code for a SystemExit Lightning raised on an interrupt, else None.

    Lightning turns SIGTERM (and our Ctrl-C, see `ctrl_c_stops_between_steps`) into
    SIGTERMException and a raw KeyboardInterrupt into sys.exit(1); a user expects the
    conventional 130 for Ctrl-C and 143 for SIGTERM.
    """
    if isinstance(exc, SIGTERMException):
        return EXIT_SIGINT if sigint else EXIT_SIGTERM
    if trainer.interrupted:
        return EXIT_SIGINT
    return None
