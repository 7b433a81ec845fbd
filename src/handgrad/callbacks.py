"""Training callbacks: the fit plot, the gradient check, text samples (more join them later)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import matplotlib
import torch

from handgrad.errors import TrainingDiverged, require
from handgrad.generate import generate
from handgrad.gradcheck import compare_gradients

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class FitPlot(L.Callback):
    """At the end of training, draw the data and the fitted model into TensorBoard and `fit.png`.

    One input and one output: the seeds' picture, data as points and the fitted line. Otherwise:
    prediction against target for every training point, with the diagonal a perfect fit would
    lie on.
    """

    def __init__(self, filename: str = "fit.png"):
        self.filename = filename

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        x, y = trainer.datamodule.train_tensors()
        with torch.no_grad():
            pred = pl_module(x.to(pl_module.device)).cpu()
        fig, ax = plt.subplots(figsize=(5, 4))
        if x.shape[1] == 1 and y.shape[1] == 1:
            ax.scatter(x[:, 0], y[:, 0], s=12, label="data")
            order = x[:, 0].argsort()
            ax.plot(x[order, 0], pred[order, 0], color="C1", label="fit")
            ax.set(xlabel="x", ylabel="y", title="data and fitted line")
            ax.legend()
        else:
            ax.scatter(y.reshape(-1), pred.reshape(-1), s=6)
            low, high = float(y.min()), float(y.max())
            ax.plot([low, high], [low, high], color="C1", label="perfect fit")
            ax.set(xlabel="target", ylabel="prediction", title="prediction vs target (train)")
            ax.legend()
        fig.tight_layout()
        fig.savefig(Path(trainer.default_root_dir) / self.filename)
        if trainer.logger is not None and hasattr(trainer.logger.experiment, "add_figure"):
            trainer.logger.experiment.add_figure("fit", fig, global_step=trainer.global_step)
        plt.close(fig)


class GradCheck(L.Callback):
    """Every `every_n_steps` optimizer steps (0: never), compare hand and autograd gradients.

    The check runs on the batch about to be trained on, in the model's own dtype, before the
    step, and logs the worst row of `handgrad.gradcheck.compare_gradients` as
    `gradcheck/max_abs_err` and `gradcheck/max_rel_err` at the current step.
    """

    def __init__(self, every_n_steps: int = 0):
        require(
            isinstance(every_n_steps, int) and every_n_steps >= 0,
            f"callbacks.gradcheck.every_n_steps={every_n_steps!r} must be an integer >= 0 (0: off)",
        )
        self.every_n_steps = every_n_steps

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.every_n_steps or trainer.global_step % self.every_n_steps:
            return
        rows = compare_gradients(pl_module, batch)
        metrics = {
            "gradcheck/max_abs_err": max(row.max_abs_err for row in rows),
            "gradcheck/max_rel_err": max(row.max_rel_err for row in rows),
        }
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)


class TextSample(L.Callback):
    """Every `every_n_epochs` training epochs, continue `prefix` with the char-RNN and log the text
    to TensorBoard's Text tab (tag `sample`) at the current step.

    temperature 0 is greedy (d2l's `predict`); > 0 samples, optionally among the `top_k` most
    likely characters, from a generator seeded with `seed` (the same every time).
    """

    def __init__(
        self,
        prefix: str = "time traveller ",
        num_chars: int = 100,
        every_n_epochs: int = 10,
        temperature: float = 0.0,
        top_k: int | None = None,
        seed: int = 0,
    ):
        require(
            isinstance(every_n_epochs, int) and every_n_epochs >= 1,
            f"callbacks.text_sample.every_n_epochs={every_n_epochs!r} must be an integer >= 1",
        )
        self.every_n_epochs = every_n_epochs
        self.options = dict(
            prefix=prefix, num_chars=num_chars, temperature=temperature, top_k=top_k, seed=seed
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        text = generate(pl_module, trainer.datamodule.vocab, **self.options)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_text"):
                logger.experiment.add_text("sample", text, global_step=trainer.global_step)


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
        require(
            isinstance(every_n_steps, int) and every_n_steps >= 0,
            f"callbacks.stop_on_non_finite.every_n_steps={every_n_steps!r} must be an integer "
            ">= 0 (0: off)",
        )
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
    """The newest checkpoint of this run on disk: ModelCheckpoint's last (or best) save, else a
    last.ckpt there from before a resume."""
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    saved = callback.last_model_path or callback.best_model_path
    if saved:
        return saved
    last = Path(callback.dirpath or "") / "last.ckpt"
    return str(last) if callback.dirpath and last.is_file() else None
