"""Stop a run whose loss or weights stop being finite, naming the step, the cause and the last
finite checkpoint."""

from __future__ import annotations

import lightning as L
import torch

from handgrad.errors import TrainingDiverged
from handgrad.run.checkpoint_writing import LastCheckpoint


class StopOnNonFinite(L.Callback):
    """Stop at the first optimizer step whose `train/loss` is nan or inf, and never save a
    checkpoint whose weights are not finite.

    The check reads the loss every `every_n_steps` steps (0: never): one host-device sync per
    check, nothing on CPU. It raises `TrainingDiverged` (the command prints it as one line and
    exits 2) naming the step, the likely cause and the last checkpoint that was saved: every
    checkpoint on disk is finite, since `on_save_checkpoint` refuses non-finite weights (a step
    can blow up the weights after a finite loss, before an epoch-end save).
    """

    def __init__(self, every_n_steps: int = 1):
        self.every_n_steps = every_n_steps
        self.last_saved_step: int | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.every_n_steps or trainer.global_step % self.every_n_steps:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        finite = bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        value = float(loss.detach().float().reshape(-1)[0])
        raise self.diverged(trainer, pl_module, f"train/loss is {value}")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get("state_dict", {})
        bad = [
            name for name, t in state.items() if t.is_floating_point() and not t.isfinite().all()
        ]
        if bad:
            raise self.diverged(trainer, pl_module, f"the weights ({bad[0]}) are not finite")
        self.last_saved_step = trainer.global_step

    def diverged(self, trainer, pl_module, what: str) -> TrainingDiverged:
        lr = trainer.optimizers[0].defaults.get("lr") if trainer.optimizers else None
        cause = f"the learning rate optimizer.lr={lr} is probably too high; lower it"
        if getattr(pl_module, "clip_grad_norm", 0) is None:
            cause += " or set model.clip_grad_norm (e.g. 1.0)"
        checkpoint = last_checkpoint(trainer)
        if checkpoint is None:
            kept = "no checkpoint was saved before it"
        else:
            at = f" (step {self.last_saved_step})" if self.last_saved_step is not None else ""
            kept = f"the last finite checkpoint is {checkpoint}{at}"
        return TrainingDiverged(
            f"{what} at step {trainer.global_step} (epoch {trainer.current_epoch}): {cause}; "
            f"{kept}",
            last_checkpoint=checkpoint,
        )


def last_checkpoint(trainer: L.Trainer) -> str | None:
    """The newest checkpoint of this run on disk: `last.ckpt` (saved by LastCheckpoint, or there
    from before a resume), else ModelCheckpoint's best one, else None."""
    for callback in trainer.callbacks:
        if isinstance(callback, LastCheckpoint) and callback.path.is_file():
            return str(callback.path)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    return best or None
