"""The keys at the root of the config: seed, threads, verbose, bf16_where_native,
optimized_metric, ckpt_path, paths.root, and gradcheck.* (scripts/gradcheck.py's). They are
checked first: other keys interpolate them (data.seed: ${seed})."""

from __future__ import annotations

from collections.abc import Mapping

from handgrad.errors import is_int
from handgrad.settings.data import MAX_SEED
from handgrad.settings.rules import Flag, Holds, OneOf, Range, check_table

ROOT = {
    "seed": Holds(
        lambda v: is_int(v) and 0 <= v <= MAX_SEED,
        f"must be an integer from 0 to {MAX_SEED} (2**32 - 1)",
    ),
    "threads": Holds(
        lambda v: v is None or (is_int(v) and v >= 1),
        "must be an integer >= 1, or null (torch's default: one per core)",
    ),
    "verbose": Flag(),
    "bf16_where_native": Flag(),
    "optimized_metric": Holds(
        lambda v: isinstance(v, str) and v != "" and not v.startswith(("best/", "last/")),
        "must name a metric as training logs it, e.g. val/loss "
        "(the run returns its value at the best checkpoint)",
    ),
    "ckpt_path": Holds(
        lambda v: v is None or (isinstance(v, str) and v != ""),
        "must be the path of a .ckpt file, or null (start fresh)",
    ),
}
PATHS = {
    "root": Holds(
        lambda v: isinstance(v, str) and v != "",
        "must be the dir to keep runs in, e.g. paths.root=outputs",
    ),
}

GRADCHECK = {  # scripts/gradcheck.py's own keys
    "dtype": OneOf(("float64", "float32")),
    "rtol": Range(0),
    "atol": Range(0),
}


def check_root(cfg: Mapping) -> None:
    check_table(cfg, "", ROOT)
    check_table(cfg.get("paths") or {}, "paths.", PATHS)
    check_table(cfg.get("gradcheck") or {}, "gradcheck.", GRADCHECK)
