"""One logdir of tiny real runs, as a new user's first look has them (a char-RNN run, a linear run,
a 2 x 2 sweep of linear/mlp x sgd/adam), and a `tensorboard` server on 127.0.0.1 over it: for the
slow tests that read TensorBoard through its HTTP API and through headless Chromium."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from helpers.runs import run_script

TINY_RNN = [  # the default recipe's cell (a 2-layer LSTM with dropout) at a tiny size
    "model=rnn", "model.hidden_size=16", "data.max_tokens=1500", "data.batch_size=8",
    "data.num_steps=16", "trainer.max_epochs=3", "trainer.max_time=null",
    "callbacks.text_sample.every_n_epochs=2", "callbacks.text_sample.num_chars=20",
]  # fmt: skip
COMMANDS = [
    TINY_RNN,
    ["model=linear", "trainer.max_epochs=3"],
    ["-m", "model=linear,mlp", "optimizer=sgd,adam", "trainer.max_epochs=3"],
]
START_TIMEOUT_S = 60


def make_logdir(root: Path, data_dir: Path) -> Path:
    """Run `COMMANDS` with `paths.root=<root>/outputs`; returns that dir (the logdir)."""
    outputs = root / "outputs"
    env = {"HANDGRAD_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    for command in COMMANDS:
        result = run_script("train.py", *command, f"paths.root={outputs}", cwd=root, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    return outputs


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def tensorboard_server(logdir: Path, log: Path):
    """A `tensorboard` server on a free loopback port, yielding its base URL once it answers.

    The server loads the whole dir once before it serves (`--reload_task blocking`), so the first
    answer already holds every event; it is stopped on leaving.
    """
    port = free_loopback_port()
    command = [
        *(sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"),
    ]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def fetch(base: str, route: str, body: dict | None = None, **query):
    """The JSON the server answers at `route` (a POST of `body` as JSON when given)."""
    url = f"{base}/{route}" + (f"?{urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    request = Request(url, data, {"Content-Type": "application/json"})
    with urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_until_serving(server: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            fetch(base, "data/runs")
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"tensorboard did not answer in {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")
