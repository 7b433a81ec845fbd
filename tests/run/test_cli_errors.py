# ruff: noqa: E501  (CASES is a table: one bad input per line)
"""Bad inputs through the real CLI: each one exits 2 with exactly one line on stderr, `error: ...`
(no traceback, no warning), and nothing on stdout, and leaves an earlier good run untouched.

The cheap cases (those that fail before Lightning is imported: Hydra composition, the config
checks in handgrad.run.checks, checkpoint files) run each script's `__main__` block in this
process (an interpreter start and its imports would cost more than each check); cases that must
build data or a model (~5 s each) run the script in a child process and are marked slow, except a
representative.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from handgrad.run.dir_claim import LOCK_FILE
from helpers.runs import SCRIPTS, run_script, run_script_in_this_process


class Evil:
    """Unpickling this runs `touch <marker>`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass
class Case:
    id: str
    script: str
    args: list[str]  # "{good}", "{root}", "{files}" are filled in from the fixture's paths
    message: str  # must appear in the last stderr line
    slow: bool = False
    marker: bool = False  # the case loads a crafted pickle: its marker must not appear
    extra: dict = field(default_factory=dict)


TRAIN = "train.py"
CASES = [
    # Hydra's own mistakes, caught by handgrad.run.compose before @hydra.main
    Case("unknown-group-option", TRAIN, ["model=nope"], "model=nope is not a model option; choose one of gpt, linear, mlp, rnn"),
    Case("unknown-group-option-an", TRAIN, ["optimizer=nope"], "optimizer=nope is not an optimizer option; choose one of adam,"),
    Case("unknown-key", TRAIN, ["foo=1"], "foo=1: foo is not a config key"),
    Case("misspelled-key", TRAIN, ["trainer.max_epoch=3"], "did you mean trainer.max_epochs?"),
    Case("wrong-key-in-group", TRAIN, ["optimizer.learning_rate=0.1"], "(optimizer has lr, momentum"),
    Case("malformed-override", TRAIN, ["model.hidden=[1,2"], "cannot read the override 'model.hidden=[1,2'"),
    Case("path-of-a-sweep-job", TRAIN, ["ckpt_path=m/0_optimizer=sgd,trainer.max_epochs=1/last.ckpt"], "quote values holding spaces, brackets, commas, = (a sweep job's dir does) or non-ASCII characters: key='value', in a shell \"key='value'\""),
    Case("non-ascii-unquoted", TRAIN, ["model=rnn", "callbacks.text_sample.prefix=梯度"], "(token recognition error at: '梯'); write key=value, quote values holding spaces, brackets, commas, = (a sweep job's dir does) or non-ASCII characters"),
    Case("override-without-value", TRAIN, ["trainer.max_epochs"], "missing EQUAL"),
    Case("sweep-without-m", TRAIN, ["optimizer=sgd,adam"], "a comma-separated value is a sweep; add -m"),
    Case("bad-option-in-sweep", TRAIN, ["-m", "model=linear,nope"], "model=nope is not a model option"),
    # a group a run needs, turned off (group=null means ~group; handgrad.run.compose)
    Case("model-null", TRAIN, ["model=null"], "model=null: a run needs one of the model options: gpt, linear, mlp, rnn"),
    Case("model-deleted", TRAIN, ["~model"], "~model: a run needs one of the model options: gpt, linear, mlp, rnn"),
    Case("data-null", TRAIN, ["data=null"], "data=null: a run needs one of the data options: fixed_regression,"),
    Case("optimizer-null", TRAIN, ["optimizer=null"], "optimizer=null: a run needs one of the optimizer options: adam,"),
    Case("device-null", TRAIN, ["device=null"], "device=null: a run needs one of the device options: auto, cpu,"),
    Case("launcher-null", TRAIN, ["hydra/launcher=null"], "hydra/launcher=null: a run needs one of the hydra/launcher options: basic,"),
    Case("callback-without-class", TRAIN, ["model=rnn", "callbacks=null"], "callbacks.model_checkpoint has settings but no callback class (_target_): its group is off or the name is misspelled; remove it with ~callbacks.model_checkpoint"),
    Case("null-in-a-group-sweep", TRAIN, ["-m", "scheduler=null,cosine"], "null cannot be one option of a sweep; sweep the scheduler options (cosine, plateau, warmup_cosine) and run scheduler=null on its own"),
    # root keys (handgrad.run.checks.check_root_keys)
    Case("seed-not-a-number", TRAIN, ["seed=abc"], "seed='abc' must be an integer from 0 to 4294967295"),
    Case("seed-negative", TRAIN, ["seed=-1"], "seed=-1 must be an integer from 0 to 4294967295"),
    Case("threads-zero", TRAIN, ["threads=0"], "threads=0 must be an integer >= 1, or null"),
    Case("verbose-not-a-bool", TRAIN, ["verbose=maybe"], "verbose='maybe' must be true or false"),
    Case("bf16-where-native-not-a-bool", TRAIN, ["model=rnn", "bf16_where_native=maybe"], "bf16_where_native='maybe' must be true or false"),
    Case("optimized-metric-prefixed", TRAIN, ["optimized_metric=best/val/loss"], "optimized_metric='best/val/loss' must name a metric as training logs it, e.g. val/loss"),
    Case("ckpt-path-not-a-path", TRAIN, ["ckpt_path=5"], "ckpt_path=5 must be the path of a .ckpt file, or null"),
    Case("max-time-unreadable", TRAIN, ["trainer.max_time=3min"], "trainer.max_time='3min' must be a duration \"dd:hh:mm:ss\""),
    Case("trainer-flag-not-a-bool", TRAIN, ["trainer.enable_model_summary=maybe"], "trainer.enable_model_summary='maybe' must be true or false"),
    # cross-cutting config checks (handgrad.run.checks)
    Case("negative-lr-torch-sgd", TRAIN, ["optimizer.lr=-1"], "optimizer.lr=-1: the learning rate must be a number > 0"),
    Case("zero-lr-torch-adam", TRAIN, ["optimizer=adam", "optimizer.lr=0"], "optimizer.lr=0: the learning rate must be a number > 0"),
    Case("lr-not-a-number", TRAIN, ["optimizer.lr=fast"], "optimizer.lr='fast': the learning rate must be a number > 0"),
    Case("betas-out-of-range", TRAIN, ["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5] must be two numbers in [0, 1)"),
    Case("negative-momentum", TRAIN, ["optimizer.momentum=-0.5"], "optimizer.momentum=-0.5 must be a number >= 0"),
    Case("zero-epochs", TRAIN, ["trainer.max_epochs=0"], "trainer.max_epochs=0 must be an integer >= 1, or -1"),
    Case("trains-forever", TRAIN, ["trainer.max_epochs=-1"], "trains forever; set one of them"),
    Case("gpu-on-cpu-machine", TRAIN, ["device=gpu"], "needs a CUDA GPU and this machine has none (torch.cuda.is_available() is False); use device=cpu, or device=auto"),
    Case("unknown-precision", TRAIN, ["trainer.precision=99"], "trainer.precision=99 is not one of"),
    Case("run-dir-under-a-file", TRAIN, ["paths.root={files}/a_file/outputs"], "a_file is a file; set paths.root="),
    # checkpoint files
    Case("ckpt-missing", TRAIN, ["ckpt_path={files}/nope.ckpt"], "nope.ckpt does not exist"),
    Case("ckpt-truncated", TRAIN, ["ckpt_path={files}/truncated.ckpt"], "truncated.ckpt cannot be read ("),
    Case("ckpt-not-a-checkpoint", TRAIN, ["ckpt_path={files}/notes.ckpt"], "notes.ckpt cannot be read ("),
    Case("ckpt-weights-only", TRAIN, ["ckpt_path={files}/weights.ckpt"], "weights.ckpt is not a handgrad training checkpoint (no epoch, global_step, optimizer_states, loops)"),
    Case("ckpt-code-execution", TRAIN, ["ckpt_path={files}/evil.ckpt"], "evil.ckpt was refused: it holds pickled Python objects (posix.system)", marker=True),
    Case("resume-code-execution", TRAIN, ["resume={files}/evil_run"], "last.ckpt was refused: it holds pickled Python objects", marker=True),
    Case("resume-fewer-epochs", TRAIN, ["resume={good}", "trainer.max_epochs=1"], "trainer.max_epochs=1 but checkpoint"),
    Case("resume-not-a-run", TRAIN, ["resume={files}"], "not a run dir (no .hydra/overrides.yaml)"),
    Case("generate-ckpt-missing", "generate.py", ["ckpt={files}/nope.ckpt"], "nope.ckpt does not exist"),
    Case("generate-ckpt-truncated", "generate.py", ["ckpt={files}/truncated.ckpt"], "truncated.ckpt cannot be read"),
    Case("generate-code-execution", "generate.py", ["ckpt={files}/evil.ckpt"], "evil.ckpt was refused", marker=True),
    Case("generate-linear-ckpt", "generate.py", ["ckpt={good}/checkpoints/last.ckpt"], "is not from a char-RNN run (no vocabulary)"),
    Case("generate-bad-arg", "generate.py", ["ckpt=x", "temperature=-1"], "temperature=-1.0 must be >= 0"),
    Case("gradcheck-unknown-model", "gradcheck.py", ["model=nope"], "model=nope is not a model option"),
    Case("gradcheck-model-null", "gradcheck.py", ["model=null"], "model=null: a run needs one of the model options"),
    Case("summarize-not-a-sweep", "summarize.py", ["{good}"], "holds no sweep jobs"),
    # checks that build the data or the model (Lightning imported: ~5 s each)
    Case("batch-size-zero", TRAIN, ["data.batch_size=0"], "data.batch_size=0 must be an integer >= 1", slow=True),
    Case("unknown-model-key", TRAIN, ["+model.foo=1"], "model.foo is not a setting of LinearRegression; remove it", slow=True),
    Case("corpus-missing", TRAIN, ["model=rnn", "data.path={files}/nope.txt"], "nope.txt does not exist or is not a file"),
    Case("ckpt-other-model", TRAIN, ["model=mlp", "ckpt_path={good}/checkpoints/last.ckpt"], "is from another kind of model: it holds w, b", slow=True),
    Case("ckpt-other-vocabulary", TRAIN, ["model=rnn", "model.hidden_size=4", "ckpt_path={files}/rnn_other_vocab.ckpt"], "was trained on another vocabulary (3 tokens) than this data's (28 tokens)", slow=True),
    Case("corpus-not-utf8", TRAIN, ["model=rnn", "data.path={files}/latin1.txt"], "latin1.txt is not UTF-8 text", slow=True),
    Case("corpus-empty", TRAIN, ["model=rnn", "data.path={files}/empty.txt"], "empty.txt is empty", slow=True),
    Case("corpus-no-letters", TRAIN, ["model=rnn", "data.path={files}/digits.txt"], "has no ASCII letters", slow=True),
    Case("corpus-wrong-sha1", TRAIN, ["model=rnn", "data.path={files}/digits.txt", "data.sha1=" + "0" * 40], "expected 0000000000000000000000000000000000000000", slow=True),
    Case("num-steps-longer-than-corpus", TRAIN, ["model=rnn", "data.num_steps=200000"], "too big for the", slow=True),
    Case("dropout-out-of-range", TRAIN, ["model=rnn", "model.num_layers=2", "model.dropout=1.5"], "model.dropout=1.5 must be in [0, 1)", slow=True),
    Case("unknown-cell", TRAIN, ["model=rnn", "model.cell=transformer"], "model.cell='transformer' is not one of scratch, rnn, gru, lstm", slow=True),
    Case("unknown-activation", TRAIN, ["model=mlp", "model.activation=swish"], "model.activation='swish' is not one of", slow=True),
    Case("zero-width-layer", TRAIN, ["model=mlp", "model.hidden=[0]"], "model.hidden=[0] must be a list of layer widths >= 1", slow=True),
    Case("unknown-reduction", TRAIN, ["model.reduction=median"], "model.reduction='median' is not one of mean, sum", slow=True),
    Case("compile-not-a-bool", TRAIN, ["model.compile=maybe"], "model.compile='maybe' must be true or false", slow=True),
    Case("val-fraction-out-of-range", TRAIN, ["data.val_fraction=1.5"], "data.val_fraction=1.5 must be in [0, 1)", slow=True),
    Case("gradcheck-bad-dtype", "gradcheck.py", ["model=mlp", "gradcheck.dtype=float16"], "gradcheck.dtype='float16' is not one of float64, float32", slow=True),
]  # fmt: skip
FAST_WITH_LIGHTNING = {"corpus-missing"}  # one representative in the default run


def snapshot(run_dir: Path) -> dict[str, tuple[int, str]]:
    """Every file of a run dir (but its lock, which holds the PID that locked it last): its mtime
    and sha1."""
    return {
        str(path.relative_to(run_dir)): (
            path.stat().st_mtime_ns,
            hashlib.sha1(path.read_bytes()).hexdigest(),
        )
        for path in sorted(run_dir.rglob("*"))
        if path.is_file() and path.name != LOCK_FILE
    }


def make_bad_files(files: Path, good: Path) -> None:
    """The bad files the cases point at (the good run's files are only read)."""
    files.mkdir()
    (files / "a_file").write_text("not a dir\n")
    last = (good / "checkpoints" / "last.ckpt").read_bytes()
    (files / "truncated.ckpt").write_bytes(last[: len(last) // 2])
    (files / "notes.ckpt").write_text("my notes about training\n")
    torch.save(
        {"state_dict": {"w": torch.zeros(1, 1), "b": torch.zeros(1)}}, files / "weights.ckpt"
    )
    torch.save({"state_dict": Evil(files / "PWNED")}, files / "evil.ckpt")
    evil_run = files / "evil_run"
    shutil.copytree(good / ".hydra", evil_run / ".hydra")
    (evil_run / "checkpoints").mkdir()
    shutil.copy(files / "evil.ckpt", evil_run / "checkpoints" / "last.ckpt")
    (files / "latin1.txt").write_bytes("Caf\xe9 au lait, the time traveller".encode("latin-1"))
    (files / "empty.txt").write_text("")
    (files / "digits.txt").write_text("1234 5678 90\n")
    from handgrad.models.char_rnn import CharRNN

    model = CharRNN(vocab_size=28, hidden_size=4)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "epoch": 0,
            "global_step": 0,
            "optimizer_states": [],
            "loops": {},
            "vocab": [" ", "<unk>", "a"],
        },
        files / "rnn_other_vocab.ckpt",
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One good tiny run, the bad files, and its snapshot."""
    root = tmp_path_factory.mktemp("bad_inputs")
    result = run_script(
        TRAIN,
        "trainer.max_epochs=2",
        "callbacks.progress_bar.refresh_rate=0",
        f"paths.root={root / 'good'}",
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (good,) = (root / "good" / "runs").glob("*/*")
    make_bad_files(root / "files", good)
    return {"root": root, "good": good, "files": root / "files", "before": snapshot(good)}


def fill(args: list[str], world: dict, case_id: str) -> list[str]:
    paths = {"good": world["good"], "files": world["files"], "root": world["root"]}
    filled = [arg.format(**paths) for arg in args]
    if not any(arg.startswith(("paths.root=", "resume=")) for arg in filled):
        filled.append(f"paths.root={world['root'] / 'bad' / case_id}")
    return filled


def run_case(case: Case, world: dict, run=run_script) -> subprocess.CompletedProcess:
    args = fill(case.args, world, case.id)
    if case.script != TRAIN:
        args = [a for a in args if not a.startswith("paths.root=")]
    return run(case.script, *args, cwd=world["root"])


CHEAP = [c for c in CASES if not c.slow and c.id not in FAST_WITH_LIGHTNING]


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit status 2, nothing on stdout, and on stderr one line: `error: ...` with `message`."""
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout == "", result.stdout[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert message in lines[0], lines[0]


def check_case(case: Case, result, world) -> None:
    assert_one_line_error(result, case.message)
    if case.marker:
        assert not (world["files"] / "PWNED").exists(), "the crafted pickle ran its code"
    assert snapshot(world["good"]) == world["before"], "the good run's files changed"
    # No run dir is left behind: none was made, or the one that was (a mistake found while
    # building data or model) is removed with the dirs above it it left empty.
    assert not (world["root"] / "bad" / case.id / "runs").exists()


@pytest.mark.parametrize("case", CHEAP, ids=[c.id for c in CHEAP])
def test_cheap_bad_input(case, world, capfd):
    """In this process the script's sys.stdout and sys.stderr are read; capfd holds what went
    straight to the process's file descriptors 1 and 2 (C code, a child process): nothing."""
    capfd.readouterr()
    check_case(case, run_case(case, world, run_script_in_this_process), world)
    assert capfd.readouterr() == ("", "")


OTHERS = [
    pytest.param(c, marks=[pytest.mark.slow] if c.slow else [], id=c.id)
    for c in CASES
    if c.slow or c.id in FAST_WITH_LIGHTNING
]


@pytest.mark.parametrize("case", OTHERS)
def test_bad_input_that_builds_data_or_model(case, world):
    check_case(case, run_case(case, world), world)


def test_enough_distinct_bad_inputs():
    assert len({c.id for c in CASES}) == len(CASES) >= 25
    assert len(CHEAP) + len(FAST_WITH_LIGHTNING) >= 25, "the default run covers 25+"


def test_hydra_full_error_keeps_the_traceback(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / TRAIN), "optimizer.lr=-1", f"paths.root={tmp_path}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert (
        "Traceback" in result.stderr
        and "ConfigError: optimizer.lr=-1: the learning rate" in result.stderr
    )
