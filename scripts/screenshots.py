"""Take the TensorBoard screenshots docs/ shows (`make screenshots`), from the real thing.

Runs three short real trainings into one temporary logdir (a tiny char-RNN, a tiny GPT with its
attention maps, a 2 x 2 sweep of MLPs: about a minute on 2 cores, one at a time), starts a real
`tensorboard` on a free loopback port (over the two language models' runs, then over every run
for HParams), and has headless Chromium photograph each tab:

    docs/images/scalars.png         Scalars: the train and val groups
    docs/images/custom-scalars.png  Custom Scalars: train and val on one chart
    docs/images/histograms.png      Histograms: weights and gradients
    docs/images/attention.png       Images: the GPT's attention maps, one panel per head
    docs/images/hparams.png         HParams: one row per run, the choices that differ

Needs Debian's `chromium` package (`apt-get install chromium`) on PATH; the rest comes with
`make setup`. The Time Machine is found as a run finds it ($HANDGRAD_DATA, ~/.cache/handgrad).
Each picture is reduced to a palette of 128 colours to keep the repository small.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
WINDOW = (1440, 900)
TINY_LM = ["data.batch_size=8", "data.num_steps=32", "data.max_tokens=20000", "threads=1"]
RUNS = [  # scripts/train.py command lines, each a few seconds
    [
        *("model=rnn", "model.hidden_size=64", "trainer.max_epochs=6", "trainer.max_time=null"),
        *("callbacks.histograms.every_n_steps=20", "callbacks.text_sample.every_n_epochs=3"),
        *TINY_LM,
    ],
    [
        *("model=gpt", "model.n_layer=2", "model.n_head=2", "model.n_embd=32"),
        *(
            "trainer.max_epochs=4",
            "trainer.max_time=null",
            "callbacks.attention_maps.every_n_epochs=2",
        ),
        *TINY_LM,
    ],
    [
        *("-m", "model=mlp", "optimizer=sgd,adam", "model.hidden=[16],[64]"),
        *("optimizer.lr=0.01", "trainer.max_epochs=8", "threads=1"),
    ],
]
# logdir (under the outputs dir) -> picture -> the tab it shows: the language models' curves on
# their own (the MLPs' squared errors would share their charts), every run in HParams
PICTURES = {
    "runs": {
        "scalars": "#scalars",
        "custom-scalars": "#custom_scalars",
        "histograms": "#histograms",
        "attention": "#images",
    },
    ".": {"hparams": "#hparams"},
}
START_TIMEOUT_S = 60


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        sys.exit("error: no chromium on PATH; install Debian's package: apt-get install chromium")
    return path


def train(outputs: Path) -> None:
    for command in RUNS:
        argv = [sys.executable, str(ROOT / "scripts" / "train.py"), *command]
        print("$", " ".join(["python", "scripts/train.py", *command]), flush=True)
        result = subprocess.run(
            [*argv, f"paths.root={outputs}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        if result.returncode != 0:
            sys.exit(f"error: the run failed:\n{result.stderr[-3000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def tensorboard(logdir: Path, log: Path):
    """A tensorboard server on 127.0.0.1 that has read the whole logdir; yields its URL."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"),
    ]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(server, url, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def wait_until_serving(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"error: tensorboard exited:\n{log.read_text()[-2000:]}")
        try:
            urlopen(url + "data/runs", timeout=5).read()
            return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"error: tensorboard did not answer in {START_TIMEOUT_S} s")


def photograph(browser: str, url: str, out: Path, profile: Path) -> None:
    """A headless Chromium screenshot of `url` after 20 s of the page's (virtual) time."""
    command = [
        *(browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"),
        *("--no-first-run", "--disable-background-networking", "--disable-component-update"),
        *("--disable-sync", f"--user-data-dir={profile}", "--force-device-scale-factor=1"),
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *("--virtual-time-budget=20000", f"--screenshot={out}", url),
    ]
    subprocess.run(command, capture_output=True, timeout=180, check=True)


def shrink(png: Path) -> None:
    """A 128-colour palette, optimised: a fifth of the size, the same to the eye."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=128, dither=Image.Dither.NONE)
    small.save(png, optimize=True)


def main() -> None:
    browser = chromium()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="handgrad-screenshots-") as tmp:
        work = Path(tmp)
        train(work / "outputs")
        for logdir, pictures in PICTURES.items():
            with tensorboard(work / "outputs" / logdir, work / "tensorboard.log") as url:
                for name, tab in pictures.items():
                    out = IMAGES / f"{name}.png"
                    photograph(browser, url + tab, out, work / "chromium")
                    shrink(out)
                    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
