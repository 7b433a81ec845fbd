"""Checkpoint safety: atomic writes, a checkpoint saved on interrupts, RNG states for resume."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

# Exit codes of a run stopped by a signal (the shell's 128 + signal number).
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temp file beside it, fsync, then rename over the old one.

    A process killed mid-save leaves the previous checkpoint intact (rename is atomic within one
    filesystem; Lightning's default stages the file in the system temp dir, which may not be).
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with temp.open("wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or SIGTERM, save `<dirpath>/last.ckpt` so `resume=<run dir>` can continue."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            log.warning(
                "interrupted at step %d: saved %s; continue with resume=%s",
                trainer.global_step,
                path,
                self.dirpath.parent,
            )


def interrupt_exit_code(trainer: L.Trainer, exc: SystemExit) -> int | None:
    """The exit code for a SystemExit Lightning raised on an interrupt, else None.

    Lightning turns SIGTERM into SIGTERMException and Ctrl-C into sys.exit(1); a user expects
    the conventional 143 and 130.
    """
    if isinstance(exc, SIGTERMException):
        return EXIT_SIGTERM
    if trainer.interrupted:
        return EXIT_SIGINT
    return None


class RngStateInCheckpoint(L.Callback):
    """Save the random number generators' states in every checkpoint and restore them on resume.

    Dropout and any other draw from the global generators then continue exactly where the
    interrupted run stopped (data order does not depend on them: it is seeded by the epoch).
    """

    def state_dict(self) -> dict:
        state = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
