"""The table of cases: each a row of `benchmark.md`, of one kind (`benchmarks/kinds/`)."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.kinds import COMPILE, HAND, MEMORY, PLAIN, QUALITY, QUALITY_PLAIN, TRAINER, Kind


@dataclass(frozen=True)
class Case:
    """One row of the table. `overrides` compose the project's config (after `device=<device>`:
    the CPU in float32, as the plain loops and d2l run; `auto` is the recipe's own default, bf16
    mixed precision for model=rnn on a CPU with native bf16); `full` / `quick` are added for the
    real benchmark / for `--quick` (a few steps)."""

    name: str
    title: str
    kind: Kind  # what the case measures and how (benchmarks/kinds/)
    overrides: tuple[str, ...]
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    # plain, trainer: ratio >= target; hand, memory: ratio <= target; quality_plain: tokens/s
    # ratio >= target
    target: float | None = None
    device: str = "cpu"
    # quality kinds: met when the best val/ppl within any one (budget s, ppl) is <= its ppl
    quality_targets: tuple[tuple[float, float], ...] = ()

    def run_overrides(self, quick: bool) -> list[str]:
        """Every override of the case's runs, `--quick` or not."""
        return [f"device={self.device}", *self.overrides, *(self.quick if quick else self.full)]


CASES = (
    Case(
        "linreg",
        "linear regression, seed 004 (project defaults, logging on)",
        PLAIN,
        ("experiment=seed004_linreg",),
        quick=("trainer.max_epochs=2", "data.passes_per_epoch=10"),
        target=0.3,
    ),
    Case(
        "seed003",
        "char-RNN seed 003 recipe (scratch relu 256, 32 x 35, sequential)",
        PLAIN,
        ("experiment=seed003_char_rnn",),
        full=("trainer.max_epochs=100",),  # of its 1000: validation every 10, as in the recipe
        quick=("trainer.max_epochs=1",),
        target=1.0,
    ),
    Case(
        "d2l",
        "char-RNN d2l 1.0 §9.5 recipe (scratch tanh 32, 1024 x 32)",
        PLAIN,
        ("experiment=d2l_rnn_scratch",),  # the whole recipe: 100 epochs
        quick=("trainer.max_epochs=1",),
        target=1.0,
    ),
    Case(
        "rnn",
        "char-RNN default model=rnn (2-layer LSTM 384, Adam, 32 x 64, sequential)",
        PLAIN,
        ("model=rnn",),
        full=("trainer.max_epochs=2",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
    ),
    Case(
        "mlp_hand",
        "MLP seed 001: backward=hand vs autograd",
        HAND,
        ("experiment=seed001_mlp",),
        quick=("trainer.max_epochs=10",),
    ),
    Case(
        "rnn_hand",
        "scratch RNN seed 003: hand BPTT vs autograd",
        HAND,
        ("experiment=seed003_char_rnn",),
        full=("trainer.max_epochs=20",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "rnn_hand_d2l",
        "scratch RNN d2l 1.0 §9.5 size (tanh 32, 1024 x 32): hand BPTT vs autograd",
        HAND,
        ("experiment=d2l_rnn_scratch",),
        full=("trainer.max_epochs=20",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "lstm_hand",
        "default model=rnn (2-layer LSTM 384, 32 x 64): hand BPTT vs autograd",
        HAND,
        ("model=rnn", "trainer.max_time=null"),
        full=("trainer.max_epochs=1",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
        target=1.5,
    ),
    Case(
        "gru_hand",
        "model=rnn model.cell=gru (2-layer GRU 384, 32 x 64): hand BPTT vs autograd",
        HAND,
        ("model=rnn", "model.cell=gru", "trainer.max_time=null"),
        full=("trainer.max_epochs=1",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
        target=1.5,
    ),
    Case(
        "lstm_hand_d2l",
        "d2l 1.0 §10.1 size (LSTM 32, 1024 x 32): hand BPTT vs autograd",
        HAND,
        ("experiment=d2l_rnn", "model.cell=lstm"),
        full=("trainer.max_epochs=10",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "gru_hand_d2l",
        "d2l 1.0 §10.2 size (GRU 32, 1024 x 32): hand BPTT vs autograd",
        HAND,
        ("experiment=d2l_rnn", "model.cell=gru"),
        full=("trainer.max_epochs=10",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "gpt_hand",
        "default model=gpt (4 layers x 4 heads x 128, 32 x 64), float32: hand backward vs autograd",
        HAND,
        ("model=gpt", "trainer.max_time=null"),
        full=("trainer.max_epochs=1",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
        target=1.3,
    ),
    Case(
        "gpt_hand_bf16",
        "default model=gpt in bf16-mixed: hand backward vs autograd",
        HAND,
        ("model=gpt", "trainer.max_time=null"),
        full=("trainer.max_epochs=1",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
        target=1.3,
        device="cpu_bf16",
    ),
    Case(
        "gpt_memory",
        "default model=gpt, float32: peak memory of a hand step vs an autograd step",
        MEMORY,
        ("model=gpt",),
        quick=("data.max_tokens=4000",),
        target=1.2,
    ),
    Case(
        "gpt_memory_bf16",
        "default model=gpt in bf16-mixed: peak memory of a hand step vs an autograd step",
        MEMORY,
        ("model=gpt",),
        quick=("data.max_tokens=4000",),
        target=1.2,
        device="cpu_bf16",
    ),
    Case(
        "d2l_trainer",
        "d2l 1.0 §9.5 recipe, 100 epochs: the project vs d2l 1.0.3's own d2l.Trainer",
        TRAINER,
        ("experiment=d2l_rnn_scratch",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "seed003_compile",
        "seed 003 recipe, hand BPTT, 100 epochs: model.compile=true vs false",
        COMPILE,
        ("experiment=seed003_char_rnn", "model.backward=hand"),
        full=("trainer.max_epochs=100",),
        quick=("trainer.max_epochs=1",),
    ),
    Case(
        "d2l_compile",
        "d2l 1.0 §9.5 recipe, 100 epochs: model.compile=true vs false",
        COMPILE,
        ("experiment=d2l_rnn_scratch",),
        quick=("trainer.max_epochs=1",),
    ),
    Case(
        "rnn_compile",
        "default model=rnn, 1 epoch: model.compile=true vs false",
        COMPILE,
        ("model=rnn", "trainer.max_time=null", "trainer.max_epochs=1"),
        quick=("data.max_tokens=4000",),
    ),
    Case(
        "quality",
        "time to quality: default model=rnn (device=auto) vs its plain PyTorch loop, same budget",
        QUALITY_PLAIN,
        ("model=rnn",),
        quick=("data.max_tokens=4000",),
        target=0.9,  # tokens/s of the project >= 0.9x the plain loop's (issue 26)
        device="auto",
        quality_targets=((180.0, 3.6),),
    ),
    Case(
        "quality_dropout_only",
        "time to quality: experiment=rnn_dropout_only (model=rnn before AWD-LSTM, device=auto)",
        QUALITY,
        ("experiment=rnn_dropout_only",),
        quick=("data.max_tokens=4000",),
        device="auto",
    ),
    Case(
        "gpt_quality",
        "time to quality: default model=gpt (device=auto) vs a plain nanoGPT loop, same budget",
        QUALITY_PLAIN,
        ("model=gpt",),
        quick=("data.max_tokens=4000",),
        device="auto",
    ),
)
CASE_NAMES = tuple(case.name for case in CASES)
