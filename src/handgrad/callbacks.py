"""Training callbacks a learner looks at: the fit plot, the gradient check, text samples."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import matplotlib
import torch

from handgrad.errors import require
from handgrad.generate import generate, read_prefix
from handgrad.gradcheck import compare_gradients

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class FitPlot(L.Callback):
    """At the end of training, draw the data and the fitted model into TensorBoard and `fit.png`.

    One input and one output: data as points and the fitted line. Otherwise:
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

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A prefix the model cannot read (a character its training text lacks) fails now."""
        read_prefix(
            self.options["prefix"], trainer.datamodule.vocab, "callbacks.text_sample.prefix"
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        vocab = trainer.datamodule.vocab
        text = as_markdown(generate(pl_module, vocab, **self.options), vocab.tokenizer)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_text"):
                logger.experiment.add_text("sample", text, global_step=trainer.global_step)


def as_markdown(text: str, tokenizer: str) -> str:
    """TensorBoard renders text as Markdown: `chars` text goes in a code block (each line indented
    by four spaces), so its newlines and symbols show as they are; d2l text (letters and single
    spaces) shows as it is."""
    if tokenizer == "d2l":
        return text
    return "\n".join("    " + line for line in text.split("\n"))
