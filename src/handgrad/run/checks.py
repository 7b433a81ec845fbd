"""Checks of a composed config that no single model or data module owns: the root keys (seed,
threads, ...), optimizer, trainer, device, output dir, the checkpoint to continue from. Each
raises a one-line ConfigError (or CheckpointError) naming the key, its value and the fix.

Models and data modules check their own keys in their constructors. These checks run before
anything is built: in `scripts/train.py` right after composing the command line (before Lightning
is imported, so a mistake costs a second, not five) and again at the top of `train()`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from handgrad.errors import ConfigError, is_int, is_number, require
from handgrad.optim.bounds import check_optimizer_settings
from handgrad.run.key_ranges import check_key_ranges

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
PRECISIONS += ("64", "32", "16", "bf16")
MIN_FREE_BYTES = 50 * 2**20  # refuse to start a run with less free disk than this
MAX_SEED = 2**32 - 1  # the largest seed NumPy takes (Lightning seeds it too)
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


def check_config(cfg: DictConfig) -> None:
    """The root, optimizer, trainer and device keys of `cfg` (see the module docstring)."""
    try:
        check_root_keys(cfg)  # first: other keys interpolate the root's (data.seed: ${seed})
        check_key_ranges(cfg)
        check_callbacks(cfg.get("callbacks") or {})
        check_optimizer_settings(cfg.optimizer)
        check_trainer(
            cfg.trainer, has_early_stopping=bool(cfg.get("callbacks", {}).get("early_stopping"))
        )
        check_device(cfg.trainer)
    except OmegaConfBaseException as exc:  # e.g. a value interpolating a key that does not exist
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"{exc.full_key or 'config'}: {first_line}") from exc


def check_root_keys(cfg: DictConfig) -> None:
    """The keys at the root of the config: seed, threads, verbose, bf16_where_native,
    optimized_metric, ckpt_path, paths.root."""
    seed = cfg.get("seed")
    require(
        is_int(seed) and 0 <= seed <= MAX_SEED,
        f"seed={seed!r} must be an integer from 0 to {MAX_SEED} (2**32 - 1)",
    )
    threads = cfg.get("threads")
    require(
        threads is None or (is_int(threads) and threads >= 1),
        f"threads={threads!r} must be an integer >= 1, or null (torch's default: one per core)",
    )
    verbose = cfg.get("verbose", False)
    require(isinstance(verbose, bool), f"verbose={verbose!r} must be true or false")
    bf16 = cfg.get("bf16_where_native", False)
    require(isinstance(bf16, bool), f"bf16_where_native={bf16!r} must be true or false")
    metric = cfg.get("optimized_metric")
    require(
        isinstance(metric, str) and metric != "" and not metric.startswith(("best/", "last/")),
        f"optimized_metric={metric!r} must name a metric as training logs it, e.g. val/loss "
        "(the run returns its value at the best checkpoint)",
    )
    ckpt_path = cfg.get("ckpt_path")
    require(
        ckpt_path is None or (isinstance(ckpt_path, str) and ckpt_path != ""),
        f"ckpt_path={ckpt_path!r} must be the path of a .ckpt file, or null (start fresh)",
    )
    root = cfg.paths.get("root")
    require(
        isinstance(root, str) and root != "",
        f"paths.root={root!r} must be the dir to keep runs in, e.g. paths.root=outputs",
    )


def check_callbacks(callbacks: DictConfig) -> None:
    """Every callback names its class: a node without `_target_` holds settings for a callback
    the config does not have (its group turned off, e.g. model=rnn's callbacks.* keys with
    callbacks=null, or a misspelled name)."""
    for name, node in callbacks.items():
        require(
            node is None or "_target_" in node,
            f"callbacks.{name} has settings but no callback class (_target_): its group is off "
            f"or the name is misspelled; remove it with ~callbacks.{name}",
        )


def check_trainer(trainer: DictConfig, has_early_stopping: bool = False) -> None:
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


def check_device(trainer: DictConfig) -> None:
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
    check_config(cfg)
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
