"""What a run prints: its log lines once each, without third-party notices, a start line naming
the run dir and a closing block.

The lines go through `logging` (Hydra's `hydra/job_logging: plain_console` prints each message as
is and keeps a detailed copy in the run dir's `train.log`). Lightning adds a console handler of its
own to its package logger, which also passes every record on to Hydra's root handlers:
`print_each_line_once` drops it. `library_notices(shown=False)` hides what a user cannot act on:
Lightning's advertisements and set-up notes and a deprecation warning from inside Lightning
(`verbose=true` shows them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

from handgrad.run.results import SOURCES

# Log records hidden unless verbose: (logger name, start of the message).
NOTICES = (
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip:"),
    ("lightning.pytorch.utilities.rank_zero", "GPU available: "),  # the run dir's config says it
    ("lightning.pytorch.utilities.rank_zero", "TPU available: "),
    ("lightning.pytorch.trainer.connectors.checkpoint_connector", "`weights_only` was not set"),
)
# Warnings hidden unless verbose: (category, message regex).
WARNINGS = ((FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),)


def print_each_line_once() -> None:
    """Drop Lightning's own console handler when the root logger prints (and files) its records."""
    if logging.getLogger().handlers:
        lightning = logging.getLogger("lightning")
        for handler in list(lightning.handlers):
            lightning.removeHandler(handler)


class StartsWith(logging.Filter):
    """Drops the records whose message starts with `prefix`."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


@contextlib.contextmanager
def library_notices(shown: bool):
    """Within the block, hide the NOTICES and WARNINGS unless `shown`."""
    if shown:
        yield
        return
    filters = [(logging.getLogger(name), StartsWith(prefix)) for name, prefix in NOTICES]
    for logger, notice in filters:
        logger.addFilter(notice)
    try:
        with warnings.catch_warnings():
            for category, message in WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for logger, notice in filters:
            logger.removeFilter(notice)


def shown_path(path: str | Path) -> str:
    """`path` relative to the working dir when it lies below it (shorter to read and paste)."""
    relative = os.path.relpath(Path(path).absolute())
    return str(path) if relative.startswith("..") else relative


def start_line(run_dir: Path, ckpt_path: str | None, checkpoint: dict | None) -> str:
    if checkpoint is None:
        return f"run dir: {shown_path(run_dir)}"
    return (
        f"run dir: {shown_path(run_dir)} (continuing from {shown_path(ckpt_path)}, "
        f"step {checkpoint['global_step']})"
    )


def closing_block(results: dict, run_dir: Path, tensorboard: bool) -> str:
    """The lines a finished run ends with: status and time (with `model.compile=true`, the part of
    it spent compiling), each checkpoint with its metrics (the `train/` and `val/` ones;
    metrics.json holds them all), linear regression's learned parameters, and the TensorBoard
    command when the run logged to TensorBoard. Numbers are those of `results` (metrics.json)."""
    compiling = results.get("last/time/compile_s")
    of_which = "" if compiling is None else f", of which compiling {compiling:.1f} s"
    lines = [
        f"status {results['status']} in {results['time/wall_s']:.1f} s "
        f"(fit {results['time/fit_s']:.1f} s{of_which})"
    ]
    for source in SOURCES:
        entry = results["checkpoints"].get(source)
        where = f"{shown_path(entry['path'])} (step {entry['step']})" if entry else "none saved"
        lines.append(f"{source} checkpoint: {where}")
        shown = {
            name.removeprefix(f"{source}/"): value
            for name, value in results.items()
            if name.startswith((f"{source}/train/", f"{source}/val/"))
        }
        if shown:
            lines.append("  " + pairs(shown))
    if "learned" in results:
        lines.append(f"learned (end of training): {pairs(results['learned'])}")
    if tensorboard:
        lines.append(f"tensorboard --logdir {shown_path(run_dir)}")
    return "\n".join(lines)


def pairs(values: dict) -> str:
    """{'val/loss': 0.2683107, 'w': [1.0, 2.0]} -> 'val/loss=0.268311 w=[1,2]' (6 digits)."""
    return " ".join(f"{name}={number(value)}" for name, value in values.items())


def number(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(number(v) for v in value) + "]"
    return f"{value:.6g}"
