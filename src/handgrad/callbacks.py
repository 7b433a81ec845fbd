"""Training callbacks a learner looks at: the fit plot, the gradient check, text samples, and
TensorBoard's dashboards (parameter histograms, learning rates, the Custom Scalars layout).

TensorBoard files every tag under its first path component and opens the first two groups in
alphabetical order, so what a run writes falls into `train/`, `val/` (opened) and `weights/`:
the curves come first. What belongs to an epoch is written at the epoch's end step, where
Lightning writes the epoch's training and validation metrics: the index of its last optimizer
step (`epoch_end_step`).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import matplotlib
import numpy as np
import torch
from lightning.pytorch.callbacks import Timer

from handgrad.generate import generate, read_prefix
from handgrad.gradcheck import compare_gradients
from handgrad.models.regression_module import MAX_LOGGED_PARAMS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def epoch_end_step(trainer: L.Trainer) -> int:
    """The step of what ends the latest epoch (or training): its last optimizer step's index, as
    Lightning logs epoch metrics (global_step counts the steps done, one more)."""
    return max(trainer.global_step - 1, 0)


class FitPlot(L.Callback):
    """At the end of training, draw the data and the fitted model into `fit.png` and TensorBoard
    (Images, `weights/fit`: what the trained weights compute, in the closed group, one card a run,
    so a sweep's plots do not push the val curves down; at the last step).

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
            trainer.logger.experiment.add_figure(
                "weights/fit", fig, global_step=epoch_end_step(trainer)
            )
        plt.close(fig)


class GradCheck(L.Callback):
    """Every `every_n_steps` optimizer steps (0: never), compare hand and autograd gradients.

    The check runs on the batch about to be trained on, in the model's own dtype, before the
    step, and logs the worst row of `handgrad.gradcheck.compare_gradients` as
    `gradcheck/max_abs_err` and `gradcheck/max_rel_err` at the current step.
    """

    def __init__(self, every_n_steps: int = 0):
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
    """Every `every_n_epochs` training epochs and when training ends, continue `prefix` with the
    char-RNN and log the text to TensorBoard's Text tab (tag `sample`) at the epoch's end step:
    the last sample is always the finished model's.

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
        self.every_n_epochs = every_n_epochs
        self.options = dict(
            prefix=prefix, num_chars=num_chars, temperature=temperature, top_k=top_k, seed=seed
        )
        self.sampled_step: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A prefix the model cannot read (a character its training text lacks) fails now."""
        read_prefix(
            self.options["prefix"], trainer.datamodule.vocab, "callbacks.text_sample.prefix"
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.sample(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.sample(trainer, pl_module)

    def sample(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log a sample at the current epoch end step, unless one is there already."""
        step = epoch_end_step(trainer)
        if not trainer.is_global_zero or step == self.sampled_step:
            return
        vocab = trainer.datamodule.vocab
        text = as_markdown(generate(pl_module, vocab, **self.options), vocab.tokenizer)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_text"):
                logger.experiment.add_text("sample", text, global_step=step)
        self.sampled_step = step


def as_markdown(text: str, tokenizer: str) -> str:
    """TensorBoard renders text as Markdown: `chars` text goes in a code block (each line indented
    by four spaces), so its newlines and symbols show as they are; d2l text (letters and single
    spaces) shows as it is."""
    if tokenizer == "d2l":
        return text
    return "\n".join("    " + line for line in text.split("\n"))


class ParameterHistograms(L.Callback):
    """Histograms of every parameter's values (`weights/<name>`) and gradient
    (`weights/<name>/grad`) in TensorBoard's Histograms and Distributions tabs, at the first
    optimizer step, every `every_n_steps` steps after it, and at the last step (0: never).

    They are taken just before the optimizer step, in both backward modes: the weights the step
    starts from and the gradient it applies, before clipping (so exploding gradients show even when
    `model.clip_grad_norm` tames them). Each histogram has `BINS` equal-width buckets from the
    tensor's min to its max (`histogram`), several times faster than TensorBoard's own
    `add_histogram` (NumPy in float64, ~1,500 exponential buckets, most of them then dropped;
    docs/benchmarks.md has the measurement). A tensor of
    at most `MAX_LOGGED_PARAMS` values gets none: too few values to show a distribution (a model
    that small logs each weight as a `weights/<name>` scalar).

    The last step: the one `trainer.max_epochs` or `trainer.max_steps` ends on is written as it
    comes. Early stopping (or a time budget, `trainer.max_time`) may end training after any epoch,
    so with either each epoch's last step keeps a copy of its weights and gradients, written when
    training ends. A run stopped inside an epoch (its time budget, an interrupt) ends with the
    histograms of its last complete epoch's last step.
    """

    BINS = 30  # as TensorBoard's own histogram summaries

    def __init__(self, every_n_steps: int = 0):
        self.every_n_steps = every_n_steps
        self.written_step = -1  # the step of the latest histograms written (-1: none yet)
        self.last_step: tuple[int, list[tuple[str, torch.Tensor]]] | None = None  # not yet written

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not (self.every_n_steps and trainer.is_global_zero and writers(trainer)):
            return
        step = trainer.global_step
        if step % self.every_n_steps == 0 or is_planned_last_step(trainer):
            self.write(trainer, step, tensors(pl_module))
        elif ends_epoch(trainer) and may_stop_early(trainer):
            self.last_step = (step, [(tag, t.detach().clone()) for tag, t in tensors(pl_module)])

    def on_train_end(self, trainer, pl_module) -> None:
        if self.last_step is not None and self.last_step[0] > self.written_step:
            self.write(trainer, *self.last_step)
        self.last_step = None

    def write(self, trainer, step: int, named: list[tuple[str, torch.Tensor]]) -> None:
        for tag, values in named:
            summary = histogram(values, self.BINS)
            if summary is None:
                continue
            for writer in writers(trainer):
                writer.add_histogram_raw(tag, **summary, global_step=step)
        self.written_step = step


def writers(trainer: L.Trainer) -> list:
    """The loggers' writers that take histograms (TensorBoard's SummaryWriter)."""
    return [w.experiment for w in trainer.loggers if hasattr(w.experiment, "add_histogram_raw")]


def tensors(module: L.LightningModule) -> list[tuple[str, torch.Tensor]]:
    """(tag, tensor) for the values and the gradient of every parameter with more values than
    `MAX_LOGGED_PARAMS`."""
    named = []
    for name, param in module.named_parameters():
        if param.numel() > MAX_LOGGED_PARAMS:
            named.append((f"weights/{name}", param))
            if param.grad is not None:
                named.append((f"weights/{name}/grad", param.grad))
    return named


def ends_epoch(trainer: L.Trainer) -> bool:
    """Whether the step about to be taken is its epoch's last."""
    batches = trainer.fit_loop.epoch_loop.batch_progress
    return batches.is_last_batch or batches.current.ready >= trainer.num_training_batches


def is_planned_last_step(trainer: L.Trainer) -> bool:
    """Whether `trainer.max_steps` or `trainer.max_epochs` ends training after the step about to
    be taken."""
    last_epoch = trainer.current_epoch + 1 == trainer.max_epochs
    return trainer.global_step + 1 == trainer.max_steps or (last_epoch and ends_epoch(trainer))


def may_stop_early(trainer: L.Trainer) -> bool:
    """Whether early stopping or a time budget may end training after any epoch."""
    return bool(trainer.early_stopping_callbacks) or any(
        isinstance(callback, Timer) for callback in trainer.callbacks
    )


def histogram(values: torch.Tensor, bins: int) -> dict | None:
    """The finite entries of `values` as `SummaryWriter.add_histogram_raw` takes them (None when
    there are none): `bins` equal-width buckets from min to max (no more buckets than values),
    bucket k holding the x with floor((x - min) / width) = k (the maximum goes in the last).
    TensorBoard stores each bucket's right edge, so an empty bucket ending at the minimum comes
    first to keep the left edge.

    What a histogram costs is mostly its size: TensorBoard's event writer checksums every event in
    pure Python (8 bytes per bucket and limit), hence few buckets. NumPy counts on one thread:
    torch's threaded kernels on a CPU busy with other processes wait for each other, and took far
    longer (docs/benchmarks.md)."""
    array = values.detach().reshape(-1).float().cpu().numpy()
    low, high = array.min(), array.max()
    if not (np.isfinite(low) and np.isfinite(high)):  # some entry is inf or nan
        array = array[np.isfinite(array)]
        if array.size == 0:
            return None
        low, high = array.min(), array.max()
    low, high, bins = float(low), float(high), min(bins, array.size)
    left, right = (low - 0.5, high + 0.5) if low == high else (low, high)  # as NumPy's histogram
    width = (right - left) / bins
    bucket = np.clip(((array - left) / width).astype(np.int64), 0, bins - 1)
    return {
        "min": low,
        "max": high,
        "num": array.size,
        "sum": float(array.sum(dtype=np.float64)),
        "sum_squares": float(np.einsum("i,i->", array, array)),  # no BLAS: one thread
        "bucket_limits": [left + k * width for k in range(bins)] + [right],
        "bucket_counts": [0, *np.bincount(bucket, minlength=bins).tolist()],
    }


class LearningRate(L.Callback):
    """At the end of every training epoch, log the learning rate the epoch trained with (before
    the scheduler steps) at the epoch's end step: `train/lr`, or with several parameter groups
    (`optimizer.lr_by_param`) `train/lr/pg<i>` for group i = 1, 2, ... (Lightning's
    LearningRateMonitor numbers them so)."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        groups = trainer.optimizers[0].param_groups
        if len(groups) == 1:
            metrics = {"train/lr": groups[0]["lr"]}
        else:
            metrics = {f"train/lr/pg{i}": group["lr"] for i, group in enumerate(groups, 1)}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=epoch_end_step(trainer))


class CustomScalars(L.Callback):
    """When training starts, write TensorBoard's Custom Scalars layout: the charts of `CHARTS`
    whose metrics this run logs, e.g. train and validation loss on one chart.

    TensorBoard merges the layouts of all runs in its logdir, so a sweep's dir shows every chart
    any of its runs has, each with the curves of every run that has its tags. Every chart holds
    one quantity in one unit, whatever models share the logdir: the regression models' loss (a
    squared error) and the language models' perplexity are distinct tags (a language model's
    cross-entropy is not written to TensorBoard).
    """

    # (category, chart title, tag regexes (matched from the start), does this run log them?)
    CHARTS = (
        (
            "train vs val",
            "loss (squared error)",
            [r"train/loss$", r"val/loss$"],
            lambda trainer, module: not is_language_model(trainer),
        ),
        (
            "train vs val",
            "perplexity",
            [r"train/ppl$", r"val/ppl$"],
            lambda trainer, module: is_language_model(trainer),
        ),
        (
            "optimization",
            "gradient norm (before clipping)",
            [r"weights/grad_norm$"],
            lambda trainer, module: getattr(module, "clip_grad_norm", None) is not None,
        ),
        (
            "optimization",
            "learning rate",
            [r"train/lr"],
            lambda trainer, module: any(isinstance(c, LearningRate) for c in trainer.callbacks),
        ),
        (
            "gradient check",
            "hand vs autograd",
            [r"gradcheck/max_abs_err$", r"gradcheck/max_rel_err$"],
            lambda trainer, module: any(
                isinstance(c, GradCheck) and c.every_n_steps for c in trainer.callbacks
            ),
        ),
    )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        layout = {}
        for category, title, tags, logged in self.CHARTS:
            if logged(trainer, pl_module):
                layout.setdefault(category, {})[title] = ["Multiline", tags]
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_custom_scalars"):
                logger.experiment.add_custom_scalars(layout)


def is_language_model(trainer: L.Trainer) -> bool:
    """The char-RNN's data has a vocabulary; the regression data has none."""
    return hasattr(trainer.datamodule, "vocab")
