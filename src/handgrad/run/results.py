"""A run's results on disk: `metrics.json` and TensorBoard's HParams tab.

Every number says where it comes from: `last/<metric>` is the last value training logged to that
curve (the run's latest state, `checkpoints/last.ckpt`; for a run that never validated while
training, its validation metrics are those of the final weights, validated after training), and
`best/<metric>` a validation metric of the best checkpoint (ModelCheckpoint's, by its monitored
metric), validated again after training.
metrics.json:

    {"status": "ok",
     "checkpoints": {"best": {"path": ..., "epoch": 2, "step": 24}, "last": {...}},
         # epoch: Lightning's epoch counter in the file (after training: the epochs trained)
     "best/val/loss": 0.268, "last/train/loss": 0.203, "last/val/loss": 0.268, ...,
     "learned": {"w": 1.46, "b": 1.59},   # linear regression: the weights training ended with
     "time/fit_s": 0.52, "time/wall_s": 0.71}

With `model.compile=true`, `last/time/compile_s` is the seconds torch.compile spent compiling
during the fit (logged at each training epoch's end; part of `time/fit_s`).

A failed run writes `status: failed` and a one-line `error` instead (and what it knows about its
checkpoints).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from handgrad.run.atomic_write import replaced_atomically

SOURCES = ("best", "last")


def write_metrics(run_dir: Path, results: dict) -> None:
    """Write `run_dir/metrics.json` whole or not at all (`replaced_atomically`)."""
    with replaced_atomically(run_dir / "metrics.json", "w") as handle:
        handle.write(json.dumps(results, indent=2) + "\n")


def labelled(source: str, metrics: dict) -> dict[str, float]:
    """{'val/loss': tensor(0.3), 'train/loss': ...} -> {'best/train/loss': ..., 'best/val/loss':
    0.3} for source 'best' (sorted by name)."""
    return {f"{source}/{name}": float(metrics[name]) for name in sorted(metrics)}


def optimized_value(results: dict, metric: str) -> float | None:
    """The value sweeps and searches optimize for `metric` (e.g. val/loss): the best checkpoint's
    when it was validated, else the last logged one; None when the run never logged it."""
    for source in SOURCES:
        if f"{source}/{metric}" in results:
            return results[f"{source}/{metric}"]
    return None


def metric_names(results: dict) -> list[str]:
    """The metrics a run logged, without their source: ['train/loss', 'val/loss', ...]."""
    prefixes = tuple(f"{source}/" for source in SOURCES)
    return sorted({key.split("/", 1)[1] for key in results if key.startswith(prefixes)})


def log_hparams(logger, cfg: DictConfig, results: dict) -> None:
    """Fill TensorBoard's HParams tab: the flattened config, and the best checkpoint's metrics as
    `best/*` scalars (one point each, at its step).

    The HParams tab shows, for each run, the last value of each of its scalar tags: the curves'
    last values and the `best/*` points. Only the session summaries are written, no experiment
    summary: TensorBoard then lists the hyper-parameters and the scalar tags of every run in the
    dir (from an experiment summary it would take one run's list and miss other models' metrics).
    """
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    best = results["checkpoints"].get("best")
    best_metrics = {k: v for k, v in results.items() if k.startswith("best/") and math.isfinite(v)}
    if best is not None and best_metrics:
        logger.log_metrics(best_metrics, step=best["step"])
    params = flatten(OmegaConf.to_container(cfg, resolve=True))
    _, session_start, session_end = hparams_summaries(params, {})
    writer = logger.experiment._get_file_writer()
    writer.add_summary(session_start)
    writer.add_summary(session_end)
    writer.flush()


def flatten(tree: dict, prefix: str = "") -> dict[str, float | int | str | bool]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and None become strings (what HParams accepts)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat
