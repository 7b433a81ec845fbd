"""Compose real configs and run the real scripts, as a user would."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
from pathlib import Path

from handgrad.run.compose import compose_run

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
SCRIPTS = ROOT / "scripts"
HELPERS = Path(__file__).resolve().parent


def compose_config(overrides: list[str], output_dir: Path):
    """The config `scripts/train.py` would build, with its run dir pointed at output_dir."""
    return compose_run(CONF, overrides, output_dir)


def run_script(script: str, *args: str, cwd: Path, timeout: float = 120, env: dict | None = None):
    """Run scripts/<script> as a user would; returns the CompletedProcess (never raises)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_script_in_this_process(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run scripts/<script>'s `__main__` block here, with `args` as its command line: for command
    lines that stop before training (a config, checkpoint or file mistake), whose interpreter
    start and imports would otherwise cost more than the check itself. Same result as
    `run_script`: the exit code (SystemExit's), stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv, here = sys.argv, Path.cwd()
    sys.argv = [str(SCRIPTS / script), *args]
    os.chdir(cwd)
    code = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_path(str(SCRIPTS / script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        os.chdir(here)
    return subprocess.CompletedProcess(sys.argv, code, stdout.getvalue(), stderr.getvalue())
