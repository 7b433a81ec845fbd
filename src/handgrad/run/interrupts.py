"""Ctrl-C and SIGTERM: stop between two batches and exit 130 / 143 (the checkpoint an interrupt
saves is `checkpoint_writing.LastCheckpoint`'s; DDP's worker processes: `ddp_interrupts`)."""

from __future__ import annotations

import contextlib
import signal
import threading

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

# Exit codes of a run stopped by a signal (the shell's 128 + signal number).
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


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
