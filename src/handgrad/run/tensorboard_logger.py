"""The TensorBoard logger every run writes its events with: Lightning's, less what is not a curve
of its own, and keeping the names of the scalars it wrote.

Left out: Lightning's `epoch` counter, which Lightning adds to every batch of metrics it logs (a
staircase that repeats the x axis, and that TensorBoard, sorting its groups by name, would show
before the training curves), and the metrics the model keeps for metrics.json
(`not_in_tensorboard`: e.g. a language model's cross-entropy, the log of the perplexity it
draws). They are still logged through Lightning, so `metrics.json` and the validation of the best
checkpoint have them.

`scalar_tags` tells `results.log_hparams` which curves the run has, so the best checkpoint's
metrics are written beside those curves only.

One event file per run: Lightning closes its writer when fitting ends, and what the task writes
after (the best checkpoint's `<metric>/best` points, the HParams summary) would go into a new
file. TensorBoard reads a run's files in name order, where a writer numbered 10 sorts before one
numbered 9 opened in the same second (a process that ran ten writers: a sweep, the tests), so a
resumed run's purge of the steps after its checkpoint, read last, could drop those points. Here
`finalize` only flushes, and the task `close`s the writer when it has written everything.
"""

from __future__ import annotations

from lightning.pytorch.loggers import TensorBoardLogger


class RunLogger(TensorBoardLogger):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.left_out = {"epoch"}
        self.scalar_tags: set[str] = set()

    def log_graph(self, model, input_array=None) -> None:
        """Lightning hands every logger the model when fitting starts (to draw its graph, which
        `log_graph=False` leaves undrawn): read which of its metrics stay out."""
        self.left_out = {"epoch", *model.not_in_tensorboard()}
        super().log_graph(model, input_array)

    def finalize(self, status: str) -> None:
        """Flush (and save the hparams file, as Lightning does on success), keeping the event
        file open for what the run writes after fitting (see the module docstring)."""
        if self._experiment is not None:
            self._experiment.flush()
        if status == "success":
            self.save()

    def close(self) -> None:
        """Close the event file; the run writes nothing more."""
        if self._experiment is not None:
            self._experiment.close()

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        metrics = {name: value for name, value in metrics.items() if name not in self.left_out}
        self.scalar_tags.update(metrics)
        super().log_metrics(metrics, step)
