"""Where training stands inside an epoch, saved in every checkpoint, so that a run resumed from a
mid-epoch checkpoint (Ctrl-C, SIGTERM, a budget that ran out) trains the epoch's next batch, not
its first one again.

Lightning writes a DataModule's `state_dict()` into each checkpoint and, when resuming, hands it to
`load_state_dict` before it asks for the loaders. The position is the epoch and the number of its
training batches the loop has completed on this process; that epoch's sampler skips them. The
plans are pure functions of (seed, epoch), so the batches after the skipped ones are exactly those
an uninterrupted run trains.
"""

from __future__ import annotations

import lightning as L

Position = tuple[int, int]  # (epoch, training batches completed in it)


class ResumableDataModule(L.LightningDataModule):
    """A DataModule whose checkpoint state is its training position (`resume_position`)."""

    resume_position: Position | None = None

    def state_dict(self) -> dict:
        """{epoch, batches_done} in the middle of an epoch; {} between epochs (a resumed run then
        starts the next epoch from its first batch)."""
        trainer = self.trainer
        if trainer is None:
            return {}
        if epoch_batches_done(trainer):
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return {"epoch": trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict:
            self.resume_position = (state_dict["epoch"], state_dict["batches_done"])


def epoch_batches_done(trainer: L.Trainer) -> bool:
    """True between an epoch's last training batch and the start of the next epoch."""
    done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
    return done >= trainer.num_training_batches


def batches_to_skip(position: Position | None, epoch: int) -> int:
    """How many of `epoch`'s batches were trained before the checkpoint `position` came from."""
    if position is None or position[0] != epoch:
        return 0
    return position[1]
