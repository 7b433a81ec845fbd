"""Training progress: a redrawn bar on a terminal, one plain line per epoch anywhere else.

Redrawn in a log file, a pipe or a CI log, a progress bar becomes thousands of carriage-return
fragments; there `EpochLines` logs one line per training epoch instead. conf/callbacks/default.yaml
builds the progress bar with `progress_bar`, which picks one of the two when the run starts.
"""

from __future__ import annotations

import logging
import sys
import time

from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

log = logging.getLogger(__name__)


def progress_bar(refresh_rate: int = 50) -> ProgressBar:
    """TQDM's bar redrawn every `refresh_rate` steps when stderr is a terminal, else EpochLines;
    `refresh_rate=0` turns both off."""
    if sys.stderr.isatty():
        return TQDMProgressBar(refresh_rate=refresh_rate)
    return EpochLines(on=refresh_rate > 0)


class EpochLines(ProgressBar):
    """Log one line per training epoch, `epoch 2, step 24, 0.3 s: train/loss=0.2028 val/loss=0.2683`
    (epochs counted from 0, as in the bar and the checkpoint names; time since training started),
    with the metrics a progress bar shows (those logged with `prog_bar=True`).

    An epoch's line is written when the next epoch starts or training ends: Lightning calls a
    callback's `on_train_epoch_end` before the model's, where the char-RNN logs the epoch's
    training perplexity.
    """

    def __init__(self, on: bool = True):
        super().__init__()
        self.on = on
        self.enabled = True  # Lightning disables the bar on every process but the first
        self.ended_epoch: int | None = None
        self.start = time.perf_counter()

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    @property
    def is_enabled(self) -> bool:
        return self.on and self.enabled

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.ended_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.write_ended_epoch(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.write_ended_epoch(trainer, pl_module)

    def write_ended_epoch(self, trainer, pl_module) -> None:
        if self.ended_epoch is None or self.is_disabled:
            return
        metrics = self.get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        shown = " ".join(f"{name}={metrics[name]:.4g}" for name in sorted(metrics))
        seconds = time.perf_counter() - self.start
        log.info(
            "epoch %d, step %d, %.1f s: %s", self.ended_epoch, trainer.global_step, seconds, shown
        )
        self.ended_epoch = None
