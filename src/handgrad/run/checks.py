"""Everything checkable before a run's data and model exist: every key's value
(`handgrad.settings`), the output dir (writable, with free disk) and the checkpoint to continue
from. Each raises a one-line ConfigError (or CheckpointError) naming the problem and the fix.

`check_before_run` runs in `scripts/train.py` right after composing the command line (before
Lightning is imported) and again at the top of `train()`, which sweep jobs and the Python API
reach without the script.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from omegaconf import DictConfig

from handgrad.errors import require
from handgrad.settings import check_settings

MIN_FREE_BYTES = 50 * 2**20  # refuse to start a run with less free disk than this


def check_output_dir(path: str | Path) -> None:
    """`path` (or the nearest dir above it that exists) is a writable dir with some free disk."""
    path = Path(path).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    fix = "set paths.root=<a writable dir with free space>"
    require(existing.is_dir(), f"cannot create the run dir {path}: {existing} is a file; {fix}")
    require(
        os.access(existing, os.W_OK | os.X_OK),
        f"cannot write the run dir {path}: {existing} is not writable; {fix}",
    )
    free = shutil.disk_usage(existing).free
    require(
        free >= MIN_FREE_BYTES,
        f"only {free / 2**20:.0f} MB free on the disk of {existing} (checkpoints and logs need "
        f"at least {MIN_FREE_BYTES / 2**20:.0f} MB); free some space or {fix}",
    )


def check_resume_epochs(path: str | Path, checkpoint: dict, trainer: DictConfig) -> None:
    """trainer.max_epochs leaves an epoch to train after those the checkpoint finished.

    Below them Lightning raises a MisconfigurationException deep inside `fit`; equal to them it
    trains nothing and rewrites the run's results. `processed` counts the epochs whose batches
    all ran (a checkpoint saved mid-epoch, e.g. on Ctrl-C, has not finished its epoch).
    """
    max_epochs = trainer.get("max_epochs")
    try:
        done = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    except (KeyError, TypeError):
        done = checkpoint.get("epoch", 0)
    require(
        max_epochs in (None, -1) or max_epochs > done,
        f"trainer.max_epochs={max_epochs} but checkpoint {path} has already trained {done} "
        f"epochs; set trainer.max_epochs={done + 1} or more to continue it",
    )


def check_before_run(cfg: DictConfig, output_dirs: list[str | Path]) -> dict | None:
    """Every check possible before a run's data and model exist; returns the checkpoint to
    continue from (loaded weights_only) or None."""
    check_settings(cfg)
    for path in output_dirs:
        check_output_dir(path)
    if cfg.get("ckpt_path") is None:
        return None
    from handgrad.run.checkpoint_reading import (  # torch: only when there is a file
        TRAINING_KEYS,
        load_checkpoint,
    )

    checkpoint = load_checkpoint(cfg.ckpt_path, keys=TRAINING_KEYS)
    check_resume_epochs(cfg.ckpt_path, checkpoint, cfg.trainer)
    return checkpoint
