"""Optuna searches (`hparams_search=...`): keep a study alive through failed trials.

In a multirun `handgrad.run.task.run_job` scores a failed job NaN, so the basic sweeper records it
and moves on. hydra-optuna-sweeper 1.3 cannot take that: `study.tell(trial, nan)` is refused, the
sweeper then calls `study.tell(trial, state=FAIL, values=[nan])`, which is refused too, and the
whole study ends with a traceback (the trial left RUNNING in the database). A job that *raises*
it does handle: the trial is told FAIL and, with `max_failure_rate: 1.0`, the search goes on.

`FailNaNTrials`, a Hydra callback registered by conf/hparams_search/*.yaml, therefore
- turns a job's NaN (or infinite) score into a failed job, whose error is the reason its
  `metrics.json` gives, so Optuna records the trial as FAIL and the search samples the next one;
- creates the sweep dir before the sweeper opens `sqlite:///<sweep dir>/optuna.db` in it (the
  launcher only makes the dir when the first trial starts, SQLite would fail before that).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class TrialFailed(Exception):
    """A trial that did not produce a finite score (the sweeper records it as FAIL)."""


class FailNaNTrials(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        if job_return.status != JobStatus.COMPLETED:
            return
        value = job_return.return_value
        if isinstance(value, int | float) and not math.isfinite(value):
            job_return.status = JobStatus.FAILED
            job_return.return_value = TrialFailed(_reason(config, value))


def _reason(config: DictConfig, value: float) -> str:
    metrics_file = Path(config.paths.output_dir) / "metrics.json"
    try:
        error = json.loads(metrics_file.read_text()).get("error")
    except (OSError, ValueError):
        error = None
    return error or f"{config.optimized_metric} is {value}"
