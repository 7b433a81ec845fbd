"""The `trainer.*` keys: epoch and step limits that end, positive intervals, a precision
Lightning knows, and a device this machine has (`device=` picks the accelerator and devices)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from omegaconf import OmegaConf

from handgrad.errors import is_int, is_number, require

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
PRECISIONS += ("64", "32", "16", "bf16")
TIME_UNITS = {"days", "hours", "minutes", "seconds"}  # trainer.max_time as a mapping
BOOLEAN_TRAINER_KEYS = {
    "enable_model_summary",
    "use_distributed_sampler",
    "enable_checkpointing",
    "enable_progress_bar",
    "inference_mode",
    "detect_anomaly",
    "barebones",
}


def check_trainer(trainer: Mapping, has_early_stopping: bool = False) -> None:
    """Epoch and step limits that end, and positive intervals."""
    max_epochs, max_steps = trainer.get("max_epochs"), trainer.get("max_steps", -1)
    require(
        max_epochs is None or (is_int(max_epochs) and (max_epochs >= 1 or max_epochs == -1)),
        f"trainer.max_epochs={max_epochs!r} must be an integer >= 1, or -1 for no epoch limit",
    )
    require(
        is_int(max_steps) and (max_steps >= 1 or max_steps == -1),
        f"trainer.max_steps={max_steps!r} must be an integer >= 1, or -1 for no step limit",
    )
    require(
        not (max_epochs == -1 and max_steps == -1) or has_early_stopping,
        "trainer.max_epochs=-1 with trainer.max_steps=-1 trains forever; "
        "set one of them, e.g. trainer.max_epochs=10",
    )
    for key in ("check_val_every_n_epoch", "log_every_n_steps", "accumulate_grad_batches"):
        value = trainer.get(key, 1)
        require(
            value is None or (is_int(value) and value >= 1),
            f"trainer.{key}={value!r} must be an integer >= 1",
        )
    sanity = trainer.get("num_sanity_val_steps", 0)
    require(
        is_int(sanity) and sanity >= -1,
        f"trainer.num_sanity_val_steps={sanity!r} must be an integer >= 0 (-1: all)",
    )
    max_time = trainer.get("max_time")
    require(
        max_time is None
        or (isinstance(max_time, str) and re.fullmatch(r"\d+:\d\d:\d\d:\d\d", max_time))
        or (
            OmegaConf.is_dict(max_time)
            and set(max_time) <= TIME_UNITS
            and all(is_number(v) and v >= 0 for v in max_time.values())
        ),
        f'trainer.max_time={max_time!r} must be a duration "dd:hh:mm:ss" '
        '(e.g. "00:00:03:00"), {minutes: 3} or null',
    )
    for key in BOOLEAN_TRAINER_KEYS & set(trainer):
        require(
            isinstance(trainer[key], bool),
            f"trainer.{key}={trainer[key]!r} must be true or false",
        )
    precision = trainer.get("precision", "32-true")
    require(
        str(precision) in PRECISIONS,
        f"trainer.precision={precision!r} is not one of {', '.join(PRECISIONS[:6])}",
    )


def check_device(trainer: Mapping) -> None:
    """A known accelerator that this machine has, and a sensible device count."""
    accelerator = trainer.get("accelerator", "auto")
    devices = trainer.get("devices", "auto")
    require(
        accelerator in ACCELERATORS,
        f"trainer.accelerator={accelerator!r} is not one of {', '.join(ACCELERATORS)}; "
        "pick a device with device=cpu, device=gpu or device=auto",
    )
    require(
        not is_int(devices) or devices >= 1 or devices == -1,
        f"trainer.devices={devices!r} must be >= 1 (or -1: all of them)",
    )
    if accelerator in ("gpu", "cuda"):
        available = cuda_device_count()
        require(
            available > 0,
            f"trainer.accelerator={accelerator} needs a CUDA GPU and this machine has none "
            "(torch.cuda.is_available() is False); use device=cpu, or device=auto "
            "(a GPU when there is one, else the CPU)",
        )
        require(
            not is_int(devices) or devices <= available,
            f"trainer.devices={devices} but this machine has {available} GPU(s); "
            f"use trainer.devices={available} or fewer",
        )
    if accelerator == "mps":
        import torch

        require(
            torch.backends.mps.is_available(),
            "trainer.accelerator=mps needs Apple's MPS, which this machine lacks; "
            "use device=cpu or device=auto",
        )


def cuda_device_count() -> int:
    """The number of CUDA GPUs, counted via NVML as Lightning does (CUDA itself stays
    uninitialized, so DDP may still fork this process)."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    import torch

    return torch.cuda.device_count()
