"""Summarize a sweep: each job's overrides, status and final metrics, best first.

A sweep dir (`outputs/multirun/<stamp>/`) holds one dir per job with `.hydra/overrides.yaml`,
`.hydra/config.yaml` and, once the job has ended, `metrics.json` (`status` "ok" or "failed", and
for a failure its one-line `error`). `summarize(sweep_dir)` writes `summary.csv` and `summary.md`
beside the jobs and returns the markdown table; it also runs by itself at the end of every sweep
(`SummarizeSweep`, a Hydra callback registered in conf/train.yaml).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from handgrad.errors import DataError
from handgrad.run.console import shown_path
from handgrad.run.results import optimized_value


@dataclass
class Job:
    name: str
    overrides: str
    status: str
    optimized_metric: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def score(self) -> float:
        """The optimized metric as the job returned it (`results.optimized_value`)."""
        value = optimized_value(self.metrics, self.optimized_metric)
        return value if value is not None and math.isfinite(value) else math.inf


def read_job(job_dir: Path) -> Job:
    """One job's overrides, status and scalar metrics; a job with no metrics.json is 'running'."""
    hydra_dir = job_dir / ".hydra"
    overrides = OmegaConf.to_container(OmegaConf.load(hydra_dir / "overrides.yaml"))
    config = OmegaConf.load(hydra_dir / "config.yaml")
    job = Job(
        name=job_dir.name,
        overrides=" ".join(overrides),
        status="running",
        optimized_metric=config.get("optimized_metric", "val/loss"),
    )
    metrics_file = job_dir / "metrics.json"
    if metrics_file.exists():
        try:
            metrics = json.loads(metrics_file.read_text())
        except json.JSONDecodeError:
            job.status, job.error = "failed", f"{metrics_file} is not valid JSON"
            return job
        job.status = metrics.get("status", "ok")
        job.error = metrics.get("error", "")
        job.metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    return job


def find_jobs(sweep_dir: Path) -> list[Job]:
    if not sweep_dir.is_dir():
        raise DataError(f"{sweep_dir} is not a directory; pass a sweep dir under outputs/multirun/")
    jobs = [read_job(d.parent.parent) for d in sorted(sweep_dir.glob("*/.hydra/overrides.yaml"))]
    if not jobs:
        raise DataError(
            f"{sweep_dir} holds no sweep jobs (no */.hydra/overrides.yaml); "
            "pass a dir made by `python scripts/train.py -m ...`"
        )
    return sorted(jobs, key=lambda job: (job.status != "ok", job.score, job.name))


def summarize(sweep_dir: str | Path) -> str:
    """Write summary.csv and summary.md into sweep_dir; return the markdown table."""
    sweep_dir = Path(sweep_dir)
    jobs = find_jobs(sweep_dir)
    metric_names = sorted({name for job in jobs for name in job.metrics})
    header = ["job", "overrides", "status", *metric_names, "error"]
    rows = [
        [job.name, job.overrides, job.status]
        + [_format(job.metrics.get(name)) for name in metric_names]
        + [job.error]
        for job in jobs
    ]
    with (sweep_dir / "summary.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    optimized = jobs[0].optimized_metric
    table = "\n".join(
        [
            f"Sweep {sweep_dir} — {len(jobs)} jobs, best {optimized} first (best/: the best "
            "checkpoint's validation, last/: the last value logged)",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows),
        ]
    )
    (sweep_dir / "summary.md").write_text(table + "\n")
    return table


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


class SummarizeSweep(Callback):
    """Print and save the sweep summary when a multirun ends, then where it is and the TensorBoard
    command for the whole sweep."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = config.hydra.sweep.dir
        print(summarize(sweep_dir))
        print(f"summary: {shown_path(Path(sweep_dir) / 'summary.md')} (and summary.csv)")
        print(f"tensorboard --logdir {shown_path(sweep_dir)}")
