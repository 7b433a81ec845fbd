"""The training task: check -> data -> model -> trainer -> fit -> validate -> metrics.json.

`scripts/train.py` wraps `run_job(cfg)` in `@hydra.main`; tests and the benchmark call `train(cfg)`
with configs composed by `handgrad.run.compose.compose_run`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from handgrad.errors import ConfigError, TrainingDiverged, find_user_error
from handgrad.run.build import build_logger, build_model, build_part
from handgrad.run.checkpoint_reading import check_fits
from handgrad.run.checkpoint_writing import AtomicCheckpointIO
from handgrad.run.checks import check_before_run
from handgrad.run.interrupts import ctrl_c_stops_between_steps, interrupt_exit_code
from handgrad.run.results import log_hparams, plain_numbers, write_metrics

log = logging.getLogger(__name__)

# Advice that does not apply to in-memory tensor batches and tiny epochs.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
# Our DataModules resume mid-epoch through their own checkpoint state (data/resume_position.py).
warnings.filterwarnings("ignore", ".*your dataloader is not resumable.*")


def run_job(cfg: DictConfig) -> float:
    """The task `scripts/train.py` runs: `train(cfg)`, made safe for sweeps.

    In a multirun a failing job (a bad value, a non-finite loss, an exception) is recorded in its
    `metrics.json` as `status: failed` with a one-line `error`, and scores NaN, so the sweep's
    other jobs still run and the summary shows why this one did not. A single run re-raises; one
    whose loss diverged records it first (with its last finite checkpoint).
    """
    try:
        return train(cfg)
    except Exception as exc:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        diverged = find_user_error(exc)
        if not (multirun or isinstance(diverged, TrainingDiverged)):
            raise
        reason = one_line(exc)
        failure = {"status": "failed", "error": reason}
        if isinstance(diverged, TrainingDiverged):
            failure["last_finite_checkpoint"] = diverged.last_checkpoint
        write_metrics(Path(cfg.paths.output_dir), failure)
        if not multirun:
            raise
        log.error("job failed: %s", reason, exc_info=find_user_error(exc) is None)
        return math.nan


def train(cfg: DictConfig) -> float:
    """Train one run described by `cfg`; write `metrics.json`; return `cfg.optimized_metric`."""
    run_dir = Path(cfg.paths.output_dir)
    checkpoint = check_before_run(cfg, [run_dir])  # the one to continue from, or None
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build_part(cfg.data, "data")
    model = build_model(cfg, datamodule)
    if checkpoint is not None:
        vocab = datamodule.vocab.to_list() if hasattr(datamodule, "vocab") else None
        check_fits(cfg.ckpt_path, checkpoint, model.state_dict(), vocab)
    callbacks = [instantiate(c, _convert_="all") for c in cfg.callbacks.values() if c]
    logger = build_logger(cfg, checkpoint)
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        default_root_dir=run_dir,
        callbacks=callbacks,
        logger=logger,
        plugins=[AtomicCheckpointIO()],
    )

    start = time.perf_counter()
    with ctrl_c_stops_between_steps(trainer) as pressed:
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
        except SystemExit as exc:
            code = interrupt_exit_code(trainer, exc, pressed["sigint"])
            raise SystemExit(exc.code if code is None else code) from None
    train_metrics = {
        **plain_numbers(trainer.callback_metrics),
        "time/fit_s": time.perf_counter() - start,
    }
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.validate(
        model, datamodule=datamodule, ckpt_path=best or None, verbose=False, weights_only=True
    )
    metrics = {**train_metrics, **plain_numbers(trainer.callback_metrics)}
    metrics["time/wall_s"] = time.perf_counter() - start
    if hasattr(model, "learned_parameters"):
        metrics["learned"] = model.learned_parameters()

    if trainer.is_global_zero:
        write_metrics(run_dir, {"status": "ok", **metrics})
        if logger:
            log_hparams(logger, cfg, metrics)
    check_optimized_metric(cfg, metrics)
    return metrics[cfg.optimized_metric]


def one_line(exc: BaseException) -> str:
    """A user error's own message, else the exception's type and first line."""
    user_error = find_user_error(exc)
    if user_error is not None:
        return str(user_error)
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"


def check_optimized_metric(cfg: DictConfig, metrics: dict) -> None:
    """Fail (after the run's results are saved) when the metric to optimize was never logged."""
    if cfg.optimized_metric not in metrics:
        raise ConfigError(
            f"optimized_metric={cfg.optimized_metric!r} was not logged; "
            f"choose one of {', '.join(sorted(metrics))}"
        )
