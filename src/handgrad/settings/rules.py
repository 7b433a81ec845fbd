"""What a rule about one config key looks like, and how a table of them is checked.

A rule says which values a key takes (`holds`) and what to tell a user whose value it does not
take (`complaint`: the words after `key=value` in the one-line ConfigError). A table maps key
names to rules; `check_table` checks the keys a config node has and leaves the absent ones alone
(each option of a group takes its own subset).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from omegaconf import OmegaConf

from handgrad.errors import is_int, is_number, require


class Rule:
    def holds(self, value) -> bool:
        raise NotImplementedError

    def complaint(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Rule):
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

    def complaint(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = ("(", ")") if self.open else ("[", "]")
            bounds = f" in {left}{shown(self.low)}, {shown(self.high)}{right}"
        elif self.low is not None:
            bounds = f" {'>' if self.open else '>='} {shown(self.low)}"
        else:
            bounds = f" {'<' if self.open else '<='} {shown(self.high)}"
        null = ", or null" if self.nullable else ""
        return f"must be {kind}{bounds}{null}{f' ({self.note})' if self.note else ''}"


@dataclass(frozen=True)
class OneOf(Rule):
    """One of a few names."""

    choices: tuple

    def holds(self, value) -> bool:
        return value in self.choices

    def complaint(self) -> str:
        return f"is not one of {', '.join(map(str, self.choices))}"


@dataclass(frozen=True)
class Flag(Rule):
    """true or false (not 1, not "yes")."""

    def holds(self, value) -> bool:
        return isinstance(value, bool)

    def complaint(self) -> str:
        return "must be true or false"


@dataclass(frozen=True)
class Holds(Rule):
    """Whatever `test` accepts, with its own words for the rest."""

    test: Callable[[object], bool]
    words: str

    def holds(self, value) -> bool:
        return self.test(value)

    def complaint(self) -> str:
        return self.words


def shown(bound: float) -> str:
    """1 for 1.0, 4294967295 in full, 0.5 as is."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def check_table(node: Mapping, prefix: str, table: Mapping[str, Rule]) -> None:
    """A ConfigError for the first key of `table` that `node` has with a value its rule does not
    hold, named `<prefix><key>`."""
    for key, rule in table.items():
        if key in node:
            value = node[key]
            if OmegaConf.is_config(value):  # a list or mapping: its plain Python values
                value = OmegaConf.to_container(value, resolve=True)
            require(rule.holds(value), f"{prefix}{key}={value!r} {rule.complaint()}")
