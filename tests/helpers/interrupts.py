"""A callback that interrupts a run at a chosen point with a real signal to its own process."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAt(L.Callback):
    """Send `signum` (SIGTERM by default) to this process after training batch `after_step` (the
    global step, counted from 1) or after the first batch of the validation pass of epoch
    `in_validation_of_epoch`. Lightning's handler (or handgrad's Ctrl-C one) sets its flag and
    training stops at its next check, as it would for a user's Ctrl-C or a scheduler's SIGTERM.
    Under DDP every rank's process sends it, or only rank `rank`'s; `to_launcher`: the signal goes
    to the process that launched the workers instead, as a `kill <PID>` of the run would."""

    def __init__(self, signum: int = signal.SIGTERM, after_step: int | None = None,
                 in_validation_of_epoch: int | None = None, rank: int | None = None,
                 to_launcher: bool = False):  # fmt: skip
        self.signum = signum
        self.after_step = after_step
        self.in_validation_of_epoch = in_validation_of_epoch
        self.rank = rank
        self.to_launcher = to_launcher

    def send(self, trainer) -> None:
        if self.rank is None or trainer.global_rank == self.rank:
            os.kill(os.getppid() if self.to_launcher else os.getpid(), self.signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.after_step:
            self.send(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        if trainer.current_epoch == self.in_validation_of_epoch and batch_idx == 0:
            self.send(trainer)
