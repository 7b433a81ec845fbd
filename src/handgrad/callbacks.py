"""Training callbacks: the fit plot (more join them in later modules)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import matplotlib
import torch

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
