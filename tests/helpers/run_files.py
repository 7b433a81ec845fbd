"""What a finished (or interrupted) run left on disk, read back for comparisons."""

from __future__ import annotations

from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def last_checkpoint(run_dir: Path) -> dict:
    """The run's checkpoints/last.ckpt, loaded as handgrad loads checkpoints (weights only)."""
    return torch.load(Path(run_dir) / "checkpoints" / "last.ckpt", weights_only=True)


def scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """Every scalar TensorBoard holds for the run (purged on resume) but the wall-clock ones
    (throughput, compile seconds, epoch): tag -> {step: value}."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: {e.step: e.value for e in events.Scalars(tag)}
        for tag in events.Tags()["scalars"]
        if not tag.startswith(("perf/", "epoch", "time/"))
    }
