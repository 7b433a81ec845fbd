"""The ranges of the numeric config keys that the classes they configure do not check themselves:
the schedulers' (torch's classes), Lightning's callbacks', and a few keys whose class takes any
number. A value out of range is one ConfigError naming the key, the value and the range, before
the run starts (a cosine schedule with `T_max=0` would otherwise train an epoch, then die inside
torch with a ZeroDivisionError).

A key is checked where the config has it, whichever option put it there (`+scheduler.cooldown=-1`
too). tests/run/test_key_ranges.py walks every numeric key of every config option and asserts a
rule here or in the key's own class covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from handgrad.errors import is_int, is_number, require


@dataclass(frozen=True)
class Range:
    """An int or a number from `low` to `high` (None: no bound on that side; `open`: the bounds
    themselves excluded), optionally null; `note` says what a value means."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    open: bool = False
    nullable: bool = False
    note: str = ""

    def holds(self, value) -> bool:
        if value is None:
            return self.nullable
        if not (is_int(value) if self.integer else is_number(value)):
            return False
        above = self.low is None or value > self.low or (value == self.low and not self.open)
        below = self.high is None or value < self.high or (value == self.high and not self.open)
        return above and below

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = ("(", ")") if self.open else ("[", "]")
            bounds = f" in {left}{shown(self.low)}, {shown(self.high)}{right}"
        elif self.low is not None:
            bounds = f" {'>' if self.open else '>='} {shown(self.low)}"
        else:
            bounds = f" {'<' if self.open else '<='} {shown(self.high)}"
        null = ", or null" if self.nullable else ""
        return f"{kind}{bounds}{null}{f' ({self.note})' if self.note else ''}"


def shown(bound: float) -> str:
    """1 for 1.0, 4294967295 in full, 0.5 as is."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


RANGES: dict[str, Range] = {
    # torch.optim.lr_scheduler.CosineAnnealingLR
    "scheduler.T_max": Range(1, integer=True, note="epochs from the start to the floor"),
    "scheduler.eta_min": Range(0),
    # torch.optim.lr_scheduler.ReduceLROnPlateau
    "scheduler.factor": Range(0, 1, open=True, note="the lr is multiplied by it"),
    "scheduler.patience": Range(0, integer=True),
    "scheduler.threshold": Range(0),
    "scheduler.cooldown": Range(0, integer=True),
    "scheduler.min_lr": Range(0),
    "scheduler.eps": Range(0),
    # lightning.pytorch.callbacks.EarlyStopping, ModelCheckpoint
    "callbacks.early_stopping.patience": Range(0, integer=True),
    "callbacks.early_stopping.min_delta": Range(0),
    "callbacks.model_checkpoint.save_top_k": Range(-1, integer=True, note="-1: keep every one"),
    "callbacks.model_checkpoint.every_n_epochs": Range(0, integer=True),
    # handgrad.callbacks.TextSample (every key: the class takes what the config gives it)
    "callbacks.text_sample.every_n_epochs": Range(1, integer=True),
    "callbacks.text_sample.num_chars": Range(1, integer=True),
    "callbacks.text_sample.temperature": Range(0, note="0: greedy"),
    "callbacks.text_sample.top_k": Range(1, integer=True, nullable=True, note="null: every token"),
    # seeds that default to `seed` (checked at the root) but may be set on their own
    "data.seed": Range(0, 2**32 - 1, integer=True),
    "callbacks.text_sample.seed": Range(0, 2**32 - 1, integer=True),
    # torch.optim.SGD takes any dampening; the char-RNN takes any init_std and embedding size
    "optimizer.dampening": Range(0, 1),
    "model.init_std": Range(0, open=True),
    "model.embedding_dim": Range(1, integer=True, nullable=True, note="null: one-hot input"),
}


def check_key_ranges(cfg: DictConfig) -> None:
    """A ConfigError for the first key of RANGES that `cfg` has with a value out of its range."""
    for key, allowed in RANGES.items():
        node, _, name = key.rpartition(".")
        parent = OmegaConf.select(cfg, node)
        if not OmegaConf.is_dict(parent) or name not in parent:
            continue
        value = parent[name]
        require(allowed.holds(value), f"{key}={value!r} must be {allowed.describe()}")
