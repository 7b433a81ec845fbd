"""A run's results on disk: `metrics.json` and TensorBoard's HParams tab."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams as hparams_summaries


def write_metrics(run_dir: Path, metrics: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def log_hparams(logger, cfg: DictConfig, metrics: dict) -> None:
    """Fill TensorBoard's HParams tab: the flattened config and the run's final metrics.

    The summaries are written directly (not via `logger.log_hyperparams(params, metrics)`, which
    would also log each metric as a bogus scalar point at step 0).
    """
    params = flatten(OmegaConf.to_container(cfg, resolve=True))
    final = {k: v for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v)}
    writer = logger.experiment._get_file_writer()
    for summary in hparams_summaries(params, final):
        writer.add_summary(summary)
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


def plain_numbers(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}
