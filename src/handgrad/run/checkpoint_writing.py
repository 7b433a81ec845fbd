"""Writing checkpoints: atomic saves, `last.ckpt` kept at the latest trained state, and the RNG
states every checkpoint carries for resume."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from handgrad.data.resume_position import epoch_batches_done
from handgrad.run.atomic_write import replaced_atomically

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temp file beside it, fsync, then rename over the old one.

    A process killed mid-save leaves the previous checkpoint intact (rename is atomic within one
    filesystem; Lightning's default stages the file in the system temp dir, which may not be).
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        with replaced_atomically(Path(path)) as handle:
            torch.save(checkpoint, handle)


class LastCheckpoint(Checkpoint):
    """Keep `<dirpath>/last.ckpt` at the latest trained state: saved at the end of a training
    epoch (after its validation, scheduler and metrics) once `every_n_seconds` have passed since
    the last save (0: every epoch; the first epoch always saves), when training ends for any
    reason (max_epochs, max_steps, max_time, early stopping) and on Ctrl-C or SIGTERM between two
    batches. So a run of thousands of tiny epochs does not fsync thousands of files, and a process
    killed outright loses at most that many seconds. The best checkpoint by the monitored metric
    is ModelCheckpoint's `best-*.ckpt`.

    A mid-epoch save carries everything the epoch carries from batch to batch (the data's
    position, the char-RNN's hidden state and loss sums, the RNG states), so resuming from it
    trains exactly the batches an uninterrupted run would have. Interrupted inside a validation
    pass, or after an epoch's last training batch but before the epoch ended, it keeps the last
    finished epoch's last.ckpt instead (the resumed run trains that epoch again, identically):
    Lightning restores a checkpoint taken mid-validation as a finished fit, and one taken between
    the last batch and the epoch's end without the epoch's end-of-epoch scheduler steps.
    A run that fails (an exception, a non-finite loss) keeps the last.ckpt it saved last.
    """

    def __init__(self, dirpath: str, every_n_seconds: float = 0.0):
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_seconds = every_n_seconds
        self.saved_step: int | None = None
        self.saved_at: float | None = None  # time.monotonic() of the last save

    def save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # the full training state
        self.saved_step, self.saved_at = trainer.global_step, time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = self.saved_at is None or time.monotonic() - self.saved_at >= self.every_n_seconds
        if trainer.strategy.broadcast(due):  # rank 0 decides: every rank must save together
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.saved_step != trainer.global_step:
            self.save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        if trainer.validating or trainer.sanity_checking or epoch_batches_done(trainer):
            kept = (
                "kept the last finished epoch's" if self.path.exists() else "no epoch finished: no"
            )
            message = f"interrupted at the end of an epoch at step %d: {kept} %s"
        else:
            self.save(trainer)
            message = "interrupted at step %d: saved %s"
        if trainer.is_global_zero:
            resume = self.path.parent.parent
            log.warning(
                message + "; continue with resume=%s", trainer.global_step, self.path, resume
            )


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
