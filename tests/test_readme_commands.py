"""Every command README.md shows runs here, so README cannot drift from the code.

`test_every_readme_command_is_known` (default run) reads the commands out of README.md and fails
when one is missing from COMMANDS below, or COMMANDS holds one README no longer shows. The slow
tests then run each script command as README writes it, with its placeholders filled in and
overrides appended that shorten long training (a later override of the same key wins), and
dry-run (`make -n`) each make target.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.runs import ROOT, run_script

README = ROOT / "README.md"

RNN_SHORT = (
    "model.hidden_size=16",
    "data.max_tokens=3000",
    "data.batch_size=8",
    "data.num_steps=16",
    "trainer.max_time=null",
    "trainer.max_epochs=1",
)
SHORT = ("trainer.max_epochs=1",)
D2L_SHORT = SHORT  # data.split=d2l takes d2l's 10,000 windows: the whole book
# README's command -> the overrides appended to shorten it, or where else it runs.
COMMANDS: dict[str, tuple[str, ...] | str] = {
    "python scripts/train.py": SHORT,
    "python scripts/train.py --help": (),
    "python scripts/train.py model=mlp optimizer=adam device=cpu": SHORT,
    "python scripts/train.py model=rnn": RNN_SHORT,
    "python scripts/train.py model=mlp model.backward=hand": SHORT,
    "python scripts/train.py model=mlp model.hidden=[100] model.activation=relu "
    "model.backward=hand": SHORT,
    "python scripts/train.py optimizer.lr_by_param={b:1e-3}": SHORT,
    "python scripts/train.py -m model=linear,mlp optimizer=sgd,adam": SHORT,
    "python scripts/train.py experiment=seed000_sigmoid": (),
    "python scripts/train.py experiment=seed001_mlp": ("trainer.max_epochs=5",),
    "python scripts/train.py experiment=seed001_mlp_adam": ("trainer.max_epochs=5",),
    "python scripts/train.py experiment=seed002_linreg": SHORT,
    "python scripts/train.py experiment=seed002_deep_linear": SHORT,
    "python scripts/train.py experiment=seed004_linreg": SHORT,
    "python scripts/train.py experiment=seed003_char_rnn": RNN_SHORT,
    "python scripts/train.py experiment=d2l_rnn": D2L_SHORT,
    "python scripts/train.py experiment=d2l_rnn_scratch": D2L_SHORT,
    "python scripts/train.py model=rnn data.path=/path/to/romeo_and_juliet.txt "
    'data.tokenizer=chars callbacks.text_sample.prefix="ROMEO:"': RNN_SHORT,
    "python scripts/train.py hparams_search=mlp_optuna": ("hydra.sweeper.n_trials=1", *SHORT),
    "python scripts/train.py hparams_search=mlp_optuna hydra.sweep.dir=outputs/search/mlp": (
        "hydra.sweeper.n_trials=1",
        *SHORT,
    ),
    "python scripts/train.py hparams_search=rnn_optuna hydra.sweep.dir=outputs/search/rnn "
    "hydra.sweeper.n_trials=50": ("hydra.sweeper.n_trials=1", *RNN_SHORT),
    "python scripts/train.py resume=outputs/runs/<date>/<time>_rnn": ("trainer.max_epochs=2",),
    "python scripts/train.py resume=<run dir> [trainer.max_epochs=…]": (),
    "python scripts/train.py ckpt_path=<file.ckpt>": ("trainer.max_epochs=2",),
    "python scripts/gradcheck.py model=mlp [overrides]": (),
    "python scripts/gradcheck.py model=mlp model.activation=tanh model.hidden=[8,4]": (),
    'python scripts/generate.py ckpt=<rnn .ckpt> prefix="time traveller " num_chars=100': (),
    "python scripts/generate.py ckpt=outputs/runs/<date>/<time>_rnn/checkpoints/last.ckpt "
    'prefix="time traveller " num_chars=100 [temperature=0.8 top_k=5 seed=1]': (),
    "python scripts/generate.py ckpt=outputs/runs/<date>/<time>_rnn/checkpoints/last.ckpt "
    'prefix="ROMEO:" num_chars=500 temperature=0.8 top_k=10': (),
    "python scripts/summarize.py outputs/multirun/<stamp>": (),
    "python scripts/summarize.py <sweep dir>": (),
    "python -m benchmarks": "tests/test_benchmarks.py runs it with --quick",
    "tensorboard --logdir": "tests/test_tensorboard_server.py serves a sweep dir",
    "tensorboard --logdir outputs": "tests/test_tensorboard_server.py serves a sweep dir",
    "tensorboard --logdir outputs/multirun/<stamp>": "tests/test_tensorboard_server.py",
}
MAKE_TARGETS = {  # make target -> what its recipe runs
    "make setup": "pip install",
    'make setup TORCH="torch --index-url https://download.pytorch.org/whl/cu124"': "--index-url",
    "make train": "scripts/train.py",
    "make test": "pytest -q -n auto",
    "make test-all": '-m ""',
    "make lint": "ruff check",
    "make format": "ruff format",
    "make bench": "-m benchmarks",
    "make bench ARGS=--quick": "-m benchmarks --quick",
    "make tensorboard": "tensorboard --logdir outputs",
    "make mutate": "mutation/mutate.py",
}


def readme_commands() -> set[str]:
    """The commands README shows: in `code` spans, and as lines of code blocks."""
    text = re.sub(r"\\\n\s*", " ", README.read_text())  # join continued lines
    starts = r"(?:python (?:scripts/|-m )|make |tensorboard )"
    spans = re.findall(rf"`({starts}[^`\n]*)`", text)
    lines = re.findall(rf"^ *({starts}.*)$", text, flags=re.MULTILINE)
    return {" ".join(command.split("  #")[0].split()) for command in [*spans, *lines]}


def test_every_readme_command_is_known():
    shown = readme_commands()
    known = set(COMMANDS) | set(MAKE_TARGETS)
    assert not shown - known, "README shows commands no test runs: add them to COMMANDS"
    assert not known - shown, "COMMANDS holds commands README no longer shows"


@pytest.fixture(scope="module")
def work(tmp_path_factory, time_machine) -> dict[str, str]:
    """A dir to run in (under "root"), and the paths README's placeholders stand for, relative to
    it: a char-RNN run and its checkpoint, a linear run's checkpoint, a sweep, and a play for the
    own-text example."""
    root = tmp_path_factory.mktemp("readme")
    play = root / "romeo_and_juliet.txt"
    play.write_text("ROMEO:\nBut, soft! what light through yonder window breaks?\n" * 60)
    runs = (["model=rnn", *RNN_SHORT], [*SHORT], ["-m", "optimizer=sgd,adam", *SHORT])
    data = {"HANDGRAD_DATA": str(time_machine.parent)}
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        results = pool.map(lambda args: run_script("train.py", *args, cwd=root, env=data), runs)
        for result in results:
            assert result.returncode == 0, result.stderr[-2000:]
    (rnn_dir,) = (root / "outputs" / "runs").glob("*/*_rnn")
    (linear_dir,) = (root / "outputs" / "runs").glob("*/*_linear")
    (sweep_dir,) = (root / "outputs" / "multirun").iterdir()
    relative = {
        "outputs/runs/<date>/<time>_rnn": rnn_dir,
        "<run dir>": rnn_dir,
        "<rnn .ckpt>": rnn_dir / "checkpoints" / "last.ckpt",
        "<file.ckpt>": linear_dir / "checkpoints" / "last.ckpt",
        "outputs/multirun/<stamp>": sweep_dir,
        "<sweep dir>": sweep_dir,
        "/path/to/romeo_and_juliet.txt": play,
    }
    return {"root": str(root)} | {k: str(v.relative_to(root)) for k, v in relative.items()}


def filled(command: str, work: dict[str, str]) -> list[str]:
    """`command`'s arguments: placeholders replaced by `work`'s paths, optional parts kept."""
    command = command.replace(" [overrides]", "").replace(
        "[trainer.max_epochs=…]", "trainer.max_epochs=2"
    )
    for placeholder, path in work.items():
        command = command.replace(placeholder, path)
    return shlex.split(re.sub(r" \[([^\]]*)\]", r" \1", command))  # " [a=1 b=2]" -> " a=1 b=2"


SCRIPT_COMMANDS = [c for c, how in COMMANDS.items() if c.startswith("python scripts/")]


@pytest.mark.slow
@pytest.mark.parametrize("command", SCRIPT_COMMANDS)
def test_readme_command_runs(command, work, corpus_env, tmp_path):
    """Each in its own copy of the work dir (resume and sweeps write into it)."""
    here = shutil.copytree(work["root"], tmp_path / "work")
    script, *args = filled(command, work)[1:]
    extra = COMMANDS[command]
    result = run_script(script.removeprefix("scripts/"), *args, *extra, cwd=here)
    assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}\n{result.stderr[-2500:]}"


@pytest.mark.slow
@pytest.mark.parametrize("command", MAKE_TARGETS)
def test_readme_make_target_exists(command):
    """`make -n -B`: what the target would run, its set-up included, without running it."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    argv = [make, "-n", "-B", *shlex.split(command)[1:]]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert MAKE_TARGETS[command] in result.stdout, result.stdout
