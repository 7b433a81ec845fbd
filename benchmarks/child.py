"""One measurement in a process of its own, so `ru_maxrss` is that run's peak memory and no run
inherits another's warm caches or threads.

The parent calls `run_child(job, work)`: it writes `<work>/job.json` and starts
`python -m benchmarks.child <work>`, which runs the job's program and writes `result.json`. A job
is a dict: `program` (one of PROGRAMS) and what that program takes, `threads`, and optionally
`env` (extra environment variables of the child process).
"""

from __future__ import annotations

import gc
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks import CONF, ROOT, BenchmarkError
from benchmarks.d2l_trainer import fit_d2l
from benchmarks.plain_loops import PLAIN_LOOPS
from handgrad.run.compose import compose_run

# --- the parent's side -----------------------------------------------------------------------


def run_child(job: dict, work: Path, threads: int | None = None) -> dict:
    """Run `job` in a fresh `python -m benchmarks.child <work>`; return its result.json."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.json").write_text(json.dumps({**job, "threads": threads}))
    log = work / "log.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **job.get("env", {}),
    }
    with log.open("w") as out:
        code = subprocess.call(
            [sys.executable, "-m", "benchmarks.child", str(work)], stdout=out, stderr=out, env=env
        )
    result = work / "result.json"
    if code != 0 or not result.is_file():
        tail = " | ".join(log.read_text().strip().splitlines()[-5:])
        raise BenchmarkError(f"{job['program']} run exited with {code}: {tail}")
    return json.loads(result.read_text())


# --- the child's side: the programs a job names ----------------------------------------------


def child_main(work: Path) -> None:
    job = json.loads((work / "job.json").read_text())
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    result = PROGRAMS[job["program"]](job, work)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["torch_threads"] = torch.get_num_threads()
    (work / "result.json").write_text(json.dumps(result))


def run_project(overrides: list[str], run_dir: Path, extra_callbacks: dict | None = None) -> dict:
    """`handgrad.run.task.train` on the composed config; fit seconds and optimizer steps."""
    from omegaconf import open_dict

    from handgrad.run.task import train

    cfg = compose_run(CONF, overrides, run_dir)
    with open_dict(cfg):
        cfg.callbacks.update(extra_callbacks or {})
    train(cfg)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = metrics["checkpoints"]["last"]
    return {
        "fit_s": metrics["time/fit_s"],
        "steps": last["step"],
        "epochs": last["epoch"] + 1,
        "precision": str(cfg.trainer.precision),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, float)},
    }


def train_start_clock(path: str):
    """A callback that writes the wall time at `on_train_start` (when `trainer.max_time` starts
    counting) to `path`; the quality run adds it (Lightning is imported in project runs only)."""
    import lightning as L

    class TrainStartClock(L.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            Path(path).write_text(json.dumps(time.time()))

    return TrainStartClock()


def run_quality(overrides: list[str], seconds: float, run_dir: Path) -> dict:
    """One project run capped at `seconds` of training; its val/ppl points as (seconds since
    training started, value), from the wall times of the TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    clock = run_dir.parent / "train_start.json"
    overrides = [*overrides, f"+trainer.max_time={{seconds:{seconds:g}}}"]
    clock_cfg = {"_target_": "benchmarks.child.train_start_clock", "path": str(clock)}
    result = run_project(overrides, run_dir, extra_callbacks={"bench_clock": clock_cfg})
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    start = json.loads(clock.read_text())
    result["val_ppl_points"] = [[e.wall_time - start, e.value] for e in events.Scalars("val/ppl")]
    return result


# The step whose memory `run_step_memory` measures: the first steps allocate what every later
# step reuses (the optimizer's state, oneDNN's caches), so the measured one comes after them.
MEMORY_WARMUP_STEPS = 2
PEAK_RESET = Path("/proc/self/clear_refs")  # writing "5" resets VmHWM to VmRSS (Linux >= 4.0)


def status_mb(key: str) -> float:
    """`VmRSS` (resident now) or `VmHWM` (its peak since the last reset) of this process, MB."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)[1]) / 1024


def step_memory_probe(path: str, step: int):
    """A callback measuring training step `step` (from 0): at its batch start no gradients held
    (autograd mode otherwise keeps the last step's until its own zero_grad; hand mode holds none
    between steps), garbage collected, the peak RSS reset to the RSS now; at its batch end (after
    the optimizer step) the peak, written to `path` as MB above the RSS the step started with."""
    import lightning as L

    class StepMemoryProbe(L.Callback):
        def __init__(self):
            self.batches, self.start_mb = 0, None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if self.batches == step:
                for param in pl_module.parameters():
                    param.grad = None
                gc.collect()
                PEAK_RESET.write_text("5")
                self.start_mb = status_mb("VmRSS")
            self.batches += 1

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if self.start_mb is not None and not Path(path).exists():
                peak = status_mb("VmHWM")
                measured = {"step_start_rss_mb": self.start_mb, "step_peak_rss_mb": peak}
                Path(path).write_text(
                    json.dumps({**measured, "step_peak_mb": peak - self.start_mb})
                )

    return StepMemoryProbe()


def run_step_memory(overrides: list[str], run_dir: Path) -> dict:
    """A project run of MEMORY_WARMUP_STEPS + 1 optimizer steps; the peak resident memory of the
    last one above the RSS it started with (`step_memory_probe`). Skipped where Linux's peak
    reset is not there."""
    if not PEAK_RESET.exists():
        return {"skipped": f"needs {PEAK_RESET} to reset the peak RSS (Linux)"}
    probe = run_dir.parent / "step_memory.json"
    probe_cfg = {"_target_": "benchmarks.child.step_memory_probe", "path": str(probe)}
    probe_cfg["step"] = MEMORY_WARMUP_STEPS
    overrides = [
        *overrides,
        f"trainer.max_steps={MEMORY_WARMUP_STEPS + 1}",
        "trainer.max_time=null",
        "++callbacks.early_stopping=null",  # the steps end before the first validation
    ]
    result = run_project(overrides, run_dir, extra_callbacks={"bench_memory": probe_cfg})
    return {**result, **json.loads(probe.read_text())}


PROGRAMS = {  # a job's program: (job, work dir) -> result
    "project": lambda job, work: run_project(job["overrides"], work / "run"),
    "plain": lambda job, work: PLAIN_LOOPS[job["spec"]["loop"]](job["spec"]),
    "d2l": lambda job, work: fit_d2l(job["spec"], work),
    "quality": lambda job, work: run_quality(job["overrides"], job["seconds"], work / "run"),
    "step_memory": lambda job, work: run_step_memory(job["overrides"], work / "run"),
}

if __name__ == "__main__":
    child_main(Path(sys.argv[1]))
