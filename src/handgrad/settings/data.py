"""The `data.*` keys, by data module (`data._target_`). What needs the data itself (a file that
exists, its sha1, enough tokens for a batch) is checked by the data module when it reads it."""

from __future__ import annotations

import re
from collections.abc import Mapping

from handgrad.errors import is_int, is_number, require
from handgrad.settings.rules import Holds, OneOf, Range, check_table

TOKENIZERS = ("d2l", "chars")
SPLITS = ("holdout", "d2l", "first_tokens")
SAMPLINGS = ("random", "sequential")
X_GENERATORS = ("uniform", "arange", "normal")
SHA1_HEX = re.compile("[0-9a-f]{40}")
MAX_SEED = 2**32 - 1  # the largest seed NumPy takes (Lightning seeds it too)


def _at_least(minimum: int, nullable: bool = False) -> Holds:
    return Holds(
        lambda v: (nullable and v is None) or (is_int(v) and v >= minimum),
        f"must be an integer >= {minimum}",
    )


SEED = Range(0, MAX_SEED, integer=True)
ROW_SPLIT = {  # every synthetic regression set
    "batch_size": Holds(
        lambda v: v is None or (is_int(v) and v >= 1),
        "must be an integer >= 1, or null for full batches",
    ),
    "val_fraction": Holds(lambda v: is_number(v) and 0 <= v < 1, "must be in [0, 1)"),
    "passes_per_epoch": Holds(lambda v: is_int(v) and v >= 1, "must be an integer >= 1"),
    "seed": SEED,
}
COUNT = Holds(lambda v: is_int(v) and v >= 1, "must be >= 1")
REGRESSION = {
    **ROW_SPLIT,
    "n_samples": COUNT,
    "noise_std": Holds(lambda v: is_number(v) and v >= 0, "must be >= 0"),
    "x": OneOf(X_GENERATORS),
}
RANDOM_REGRESSION = {**ROW_SPLIT, "n_samples": COUNT, "in_features": COUNT, "out_features": COUNT}
TIME_MACHINE = {
    "tokenizer": OneOf(TOKENIZERS),
    "split": OneOf(SPLITS),
    "sampling": OneOf(SAMPLINGS),
    "val_fraction": Holds(lambda v: is_number(v) and 0 < v < 1, "must be a number in (0, 1)"),
    "sha1": Holds(
        lambda v: v is None or (isinstance(v, str) and SHA1_HEX.fullmatch(v) is not None),
        "must be 40 lower-case hex digits, or null (no check of data.path)",
    ),
    "num_steps": _at_least(1),
    "batch_size": _at_least(1),
    "max_tokens": _at_least(2, nullable=True),
    "seed": SEED,
}


def _matrix(value) -> bool:
    """A non-empty list of equal-length, non-empty rows of numbers."""
    rows = value if isinstance(value, list) else None
    return (
        bool(rows)
        and all(isinstance(row, list) and row and len(row) == len(rows[0]) for row in rows)
        and all(is_number(x) for row in rows for x in row)
    )


MATRIX = Holds(_matrix, "must be a list of equal-length rows of numbers, e.g. [[-0.5, 0.1]]")
FIXED_REGRESSION = {**ROW_SPLIT, "x": MATRIX, "y": MATRIX}


def check_fixed_regression(data: Mapping) -> None:
    """One y row per x row."""
    x, y = data.get("x"), data.get("y")
    require(
        len(x) == len(y),
        f"data.x has {len(x)} rows but data.y has {len(y)}; give one y row per x row",
    )


def check_regression(data: Mapping) -> None:
    w_true = data.get("w_true")
    require(
        w_true is not None and len(w_true) >= 1,
        "data.w_true must list at least one weight, e.g. [3.0]",
    )


def check_time_machine(data: Mapping) -> None:
    """Sampling the split can do, and a text to read."""
    require(
        not (data.get("split") == "d2l" and data.get("sampling") == "sequential"),
        "data.sampling=sequential needs data.split=holdout or first_tokens "
        "(d2l's stride-1 windows overlap, so no row can continue another)",
    )
    require(
        bool(data.get("path")) or bool(data.get("url")),
        "data.url is empty: set it, or set data.path to a file",
    )


MODULES = "handgrad.data.synthetic_regression."
# data._target_ -> (its keys' rules, checks that read several keys)
DATA_MODULES = {
    MODULES + "RegressionDataModule": (REGRESSION, [check_regression]),
    MODULES + "RandomRegressionDataModule": (RANDOM_REGRESSION, []),
    MODULES + "FixedRegressionDataModule": (FIXED_REGRESSION, [check_fixed_regression]),
    "handgrad.data.timemachine.TimeMachineDataModule": (TIME_MACHINE, [check_time_machine]),
}


def check_data(data: Mapping) -> None:
    table, checks = DATA_MODULES.get(data.get("_target_"), ({}, []))
    check_table(data, "data.", table)
    for check in checks:
        check(data)
