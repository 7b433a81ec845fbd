"""The training task: check -> data -> model -> trainer -> fit -> validate the best checkpoint ->
metrics.json and the closing block.

`scripts/train.py` wraps `run_job(cfg)` in `@hydra.main`; tests and the benchmark call `train(cfg)`
with configs composed by `handgrad.run.compose.compose_run`.
"""

from __future__ import annotations

import contextlib
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

from handgrad.errors import (
    ConfigError,
    RunDirError,
    TrainingDiverged,
    find_user_error,
    first_line,
)
from handgrad.run.build import build_logger, build_model, build_part
from handgrad.run.checkpoint_reading import check_fits, load_checkpoint
from handgrad.run.checkpoint_writing import AtomicCheckpointIO, LastCheckpoint
from handgrad.run.checks import check_before_run
from handgrad.run.console import closing_block, library_notices, print_each_line_once, start_line
from handgrad.run.ddp_interrupts import stop_ranks_together, workers_exit_code
from handgrad.run.dir_claim import held_while_running, live_holder
from handgrad.run.interrupts import ctrl_c_stops_between_steps, interrupt_exit_code
from handgrad.run.results import (
    labelled,
    log_hparams,
    metric_names,
    optimized_value,
    write_metrics,
)
from handgrad.run.run_dir import remove_if_unused, write_failure
from handgrad.run.tensorboard_logger import RunLogger

log = logging.getLogger(__name__)
# What a checkpoint's entry in metrics.json reads from it.
POSITION_KEYS = ("epoch", "global_step")

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
    whose loss diverged, or whose run dir could not be written (a RunDirError then replaces the
    OSError), records it first; one that failed before writing anything leaves no run dir.
    """
    run_dir = Path(cfg.paths.output_dir)
    try:
        with held_while_running(run_dir):
            return train(cfg)
    except Exception as exc:
        error = find_user_error(exc) or write_failure(exc, run_dir)
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        if multirun or isinstance(error, TrainingDiverged | RunDirError):
            record_failure(run_dir, error or exc)
        else:
            remove_if_unused(run_dir, Path(cfg.paths.root))
        if multirun:
            log.error("job failed: %s", one_line(error or exc), exc_info=error is None)
            return math.nan
        if isinstance(error, RunDirError):
            raise error from exc
        raise


def record_failure(run_dir: Path, error: BaseException) -> None:
    """metrics.json with `status: failed`, the one-line error and, for a diverged run, its last
    finite checkpoint; skipped when the disk refuses it too."""
    failure = {"status": "failed", "error": one_line(error)}
    if isinstance(error, TrainingDiverged):
        failure["last_finite_checkpoint"] = error.last_checkpoint
    with contextlib.suppress(OSError):
        write_metrics(run_dir, failure)


def train(cfg: DictConfig) -> float:
    """Train one run described by `cfg`; write `metrics.json` and print the closing block; return
    the optimized metric (`optimized_value`: the best checkpoint's value of `cfg.optimized_metric`).
    """
    start = time.perf_counter()
    run_dir = Path(cfg.paths.output_dir)
    checkpoint = check_before_run(cfg, [run_dir])  # the one to continue from, or None
    run_dir.mkdir(parents=True, exist_ok=True)
    print_each_line_once()
    if cfg.ckpt_path is not None:
        warn_if_written_by_a_live_run(Path(cfg.ckpt_path))
    with library_notices(shown=cfg.verbose):
        model, datamodule, trainer = build_run(cfg, run_dir, checkpoint)
    try:
        return fit_and_report(cfg, start, model, datamodule, trainer, checkpoint)
    finally:
        if isinstance(trainer.logger, RunLogger):
            trainer.logger.close()  # after everything the run writes (one event file)


def fit_and_report(cfg: DictConfig, start: float, model, datamodule, trainer, checkpoint) -> float:
    """Fit, validate the last and the best weights, write `metrics.json` and the HParams summary,
    print the closing block; return the optimized metric."""
    run_dir = Path(cfg.paths.output_dir)
    with library_notices(shown=cfg.verbose):
        if trainer.is_global_zero:
            log.info(start_line(run_dir, cfg.ckpt_path, checkpoint))
        fit_start = time.perf_counter()
        fit(trainer, model, datamodule, cfg.ckpt_path)
        fit_s = time.perf_counter() - fit_start
        last, last_entry = last_results(trainer, model)  # before the best weights are loaded
        if not any(name.startswith("last/val/") for name in last):  # training never validated
            last.update(labelled("last", validation_metrics(trainer, model, datamodule)))
        best, best_entry = best_results(trainer, model, datamodule)
    entries = {"best": best_entry, "last": last_entry}
    results = {
        "status": "ok",
        "checkpoints": {source: entry for source, entry in entries.items() if entry is not None},
        **best,
        **last,
        "time/fit_s": fit_s,
        "time/wall_s": time.perf_counter() - start,
    }
    if trainer.is_global_zero:
        write_metrics(run_dir, results)
        if trainer.logger:
            log_hparams(trainer.logger, cfg, results)
        log.info(closing_block(results, run_dir, tensorboard=bool(trainer.logger)))
    return checked_optimized_value(cfg, results)


def warn_if_written_by_a_live_run(ckpt_path: Path) -> None:
    """Reading a checkpoint of a run that is still training is fine: say what is read."""
    pid = live_holder(ckpt_path.parent.parent)  # <run dir>/checkpoints/<file>.ckpt
    if pid is not None:
        log.warning(
            "ckpt_path=%s belongs to a run that is still training (PID %s): this run starts "
            "from the file as saved now (saves replace it whole, never half-written)",
            ckpt_path,
            pid or "starting",
        )


def build_run(cfg: DictConfig, run_dir: Path, checkpoint: dict | None):
    """Seed, then the run's parts: data, model (checked against the checkpoint to continue from),
    callbacks, logger, Trainer."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_part(cfg.data, "data")
    model = build_model(cfg, datamodule)
    if checkpoint is not None:
        vocab = datamodule.vocab.to_list() if hasattr(datamodule, "vocab") else None
        check_fits(cfg.ckpt_path, checkpoint, model.state_dict(), vocab)
    callbacks = [instantiate(c, _convert_="all") for c in cfg.get("callbacks", {}).values() if c]
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        default_root_dir=run_dir,
        callbacks=callbacks,
        logger=build_logger(cfg, checkpoint),
        plugins=[AtomicCheckpointIO()],
    )
    stop_ranks_together(trainer)  # DDP workers: an interrupt stops every rank at the same step
    return model, datamodule, trainer


def fit(trainer: L.Trainer, model, datamodule, ckpt_path: str | None) -> None:
    """`trainer.fit`; Ctrl-C stops between two batches, and an interrupt exits 130 / 143 (under
    DDP the workers stop and save, and `trainer.fit` returns here; see run/ddp_interrupts.py)."""
    with ctrl_c_stops_between_steps(trainer) as pressed:
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except SystemExit as exc:
            code = interrupt_exit_code(trainer, exc, pressed["sigint"])
            raise SystemExit(exc.code if code is None else code) from None
    code = workers_exit_code(trainer)
    if code is not None:
        raise SystemExit(code)


def last_results(trainer: L.Trainer, model) -> tuple[dict, dict | None]:
    """The last value training logged to each metric (`last/...`) and linear regression's weights
    at the end (`learned`); `last.ckpt`'s entry (None when no LastCheckpoint saved one)."""
    results = labelled("last", trainer.callback_metrics)
    if hasattr(model, "learned_parameters"):
        results["learned"] = model.learned_parameters()
    path = next((c.path for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
    if path is None or not path.is_file():
        return results, None
    return results, checkpoint_entry(path, load_checkpoint(path, POSITION_KEYS))


def best_results(trainer: L.Trainer, model, datamodule) -> tuple[dict, dict | None]:
    """The best checkpoint's validation metrics (`best/...`; its weights are loaded into `model`
    and validated) and its entry (None when ModelCheckpoint kept none)."""
    path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not path:
        return {}, None
    checkpoint = load_checkpoint(path, ("state_dict", *POSITION_KEYS))
    model.load_state_dict(checkpoint["state_dict"])
    metrics = labelled("best", validation_metrics(trainer, model, datamodule))
    return metrics, checkpoint_entry(path, checkpoint)


def validation_metrics(trainer: L.Trainer, model, datamodule) -> dict:
    """The validation metrics of `model`'s weights, with the loggers detached: the curves show
    only what training saw (no extra point at the end of each validation curve)."""
    loggers, trainer.loggers = trainer.loggers, []
    try:
        results = trainer.validate(model, datamodule=datamodule, verbose=False)
    finally:
        trainer.loggers = loggers
    return results[0] if results else {}


def checkpoint_entry(path, checkpoint: dict) -> dict:
    """A checkpoint as metrics.json's `checkpoints` block lists it."""
    return {"path": str(path), "epoch": checkpoint["epoch"], "step": checkpoint["global_step"]}


def checked_optimized_value(cfg: DictConfig, results: dict) -> float:
    """`optimized_value` of `cfg.optimized_metric`; a ConfigError (after the results are saved)
    when the run never logged that metric."""
    value = optimized_value(results, cfg.optimized_metric)
    if value is None:
        raise ConfigError(
            f"optimized_metric={cfg.optimized_metric!r} was not logged; "
            f"choose one of {', '.join(metric_names(results))}"
        )
    return value


def one_line(exc: BaseException) -> str:
    """A user error's own message, else the exception's type and first line."""
    user_error = find_user_error(exc)
    if user_error is not None:
        return str(user_error)
    return f"{type(exc).__name__}: {first_line(exc)}"
