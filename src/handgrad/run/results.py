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

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from handgrad.run.atomic_write import replaced_atomically
from handgrad.run.resume import override_key

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
    """Fill TensorBoard's HParams tab: this run's `compared_hparams` under a short trial name, and
    the best checkpoint's metrics beside the curves they come from.

    The HParams tab shows, for each run, the last value of each of its scalar tags: the curves'
    last values and the best checkpoint's, written as `<metric>/best` (e.g. `val/loss/best`, one
    point at the checkpoint's epoch end step) for the metrics whose curves the run has in
    TensorBoard (`logger.scalar_tags`). Only the session summaries are written, no experiment
    summary: TensorBoard then lists the hyper-parameters and the scalar tags of every run in the
    dir (from an experiment summary it would take one run's list and miss other models' metrics).
    The trial name (the session group) is the run dir's name, then its parent's: a sweep job's
    own overrides come first, where a narrow column still shows them.
    """
    from tensorboard.plugins.hparams import plugin_data_pb2
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    best = results["checkpoints"].get("best")
    best_metrics = {
        f"{key.removeprefix('best/')}/best": value
        for key, value in results.items()
        if key.startswith("best/")
        and key.removeprefix("best/") in logger.scalar_tags
        and math.isfinite(value)
    }
    if best is not None and best_metrics:
        logger.log_metrics(best_metrics, step=max(best["step"] - 1, 0))
    _, session_start, session_end = hparams_summaries(compared_hparams(cfg), {})
    run_dir = Path(cfg.paths.output_dir)
    content = session_start.value[0].metadata.plugin_data
    plugin_data = plugin_data_pb2.HParamsPluginData.FromString(content.content)
    plugin_data.session_start_info.group_name = f"{run_dir.name} ({run_dir.parent.name})"
    content.content = plugin_data.SerializeToString()
    writer = logger.experiment._get_file_writer()
    writer.add_summary(session_start)
    writer.add_summary(session_end)
    writer.flush()


_MISSING = object()  # OmegaConf.select's default: tells an absent key from a null one
# Config keys the HParams tab lists for every run that has them, besides each config group's
# choice and the keys the command line set: the model's shape, how it trains, for how long, in
# what precision, from what seed.
HPARAM_KEYS = (
    "model.cell",
    "model.hidden",
    "model.hidden_size",
    "model.num_layers",
    "model.embedding_dim",
    "model.dropout",
    "model.backward",
    "model.clip_grad_norm",
    "optimizer.lr",
    "data.batch_size",
    "data.num_steps",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.precision",
    "seed",
)
# The config groups whose choice (e.g. model=rnn) a run is compared by.
GROUPS = ("model", "data", "optimizer", "scheduler", "device", "experiment")
# Keys naming where things are, or which class implements them: different for every run, or
# implied by the group's choice, never what runs are compared by.
NOT_COMPARED = ("_target_", "path", "dirpath", "root", "url", "output_dir", "save_dir", "ckpt_path")


def compared_hparams(cfg: DictConfig) -> dict[str, float | int | str | bool]:
    """What the HParams tab lists for the run of `cfg`: each config group's choice and each key the
    command line set (`launched_as`), then the `HPARAM_KEYS` the config has; no key of
    `NOT_COMPARED`, no sub-tree. Lists and null become text (`[100]`, `null`)."""
    choices, overrides = launched_as(cfg)
    params = {group: choice for group, choice in choices.items() if choice is not None}
    for key in [*overrides, *HPARAM_KEYS]:
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is _MISSING or OmegaConf.is_dict(value) or key in params:
            continue
        if key.rsplit(".", 1)[-1] in NOT_COMPARED:
            continue
        value = OmegaConf.to_container(value) if OmegaConf.is_list(value) else value
        params[key] = value if isinstance(value, bool | int | float | str) else json.dumps(value)
    return params


def launched_as(cfg: DictConfig) -> tuple[dict[str, str | None], list[str]]:
    """The config groups' choices and the keys the command line set, for a run Hydra launched
    (its runtime dir is the run's); nothing for a run started in code with `train(cfg)`."""
    if not HydraConfig.initialized():
        return {}, []
    hydra = HydraConfig.get()  # in a process that composed other configs: maybe not this run's
    if OmegaConf.select(hydra, "runtime.output_dir", default=None) != cfg.paths.output_dir:
        return {}, []
    choices = {group: hydra.runtime.choices.get(group) for group in GROUPS}
    return choices, [override_key(override) for override in hydra.overrides.task]
