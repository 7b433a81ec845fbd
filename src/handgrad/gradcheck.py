"""Gradient check: a model's hand-derived gradients against autograd's, on the same batch.

Works for any HandgradModule: autograd differentiates `model.reference_loss(batch, state)` (the
training loss, unless the model says otherwise), the hand side is the model's hand pass, both from
the same state of the random number generator (so dropout draws the same masks on both sides;
`HandgradModule.gradient_pair`). For the loss and every parameter, with a = autograd's tensor and
h = the hand one:
    max abs err = max_i |h_i - a_i|
    max rel err = max abs err / max_i |a_i|   (relative to the gradient's largest entry, so an
                                               entry that is 0 on both sides costs nothing)
and a row is ok when max abs err <= atol or max rel err <= rtol. A gradient the hand backward
does not return (or returns for no parameter) is an infinite error.

`python scripts/gradcheck.py model=mlp ...` runs `gradcheck(cfg)`; the GradCheck callback runs
`compare_gradients` during training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from handgrad.run.build import build_model
from handgrad.settings import check_settings

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class GradCheckRow:
    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float

    def ok(self, rtol: float, atol: float) -> bool:
        return self.max_abs_err <= atol or self.max_rel_err <= rtol


def compare_gradients(model, batch) -> list[GradCheckRow]:
    """One row for the loss, then one per trainable parameter (in `named_parameters` order), from
    what the model's base class says the check compares (`HandgradModule.gradient_pair`)."""
    (loss, auto), (hand_loss, hand) = model.gradient_pair(batch)
    rows = [_row("(loss)", loss, hand_loss)]
    rows += [_row(name, grad, hand.get(name)) for name, grad in auto.items()]
    rows += [_row(name, None, hand[name]) for name in hand if name not in auto]
    return rows


def _row(name: str, auto: torch.Tensor | None, hand: torch.Tensor | None) -> GradCheckRow:
    known = auto if auto is not None else hand
    if auto is None or hand is None or hand.shape != auto.shape:
        return GradCheckRow(name, tuple(known.shape), math.inf, math.inf)
    abs_err = (hand - auto).abs().max().item() if auto.numel() else 0.0
    scale = auto.abs().max().item() if auto.numel() else 0.0
    rel_err = abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else math.inf)
    return GradCheckRow(name, tuple(auto.shape), abs_err, rel_err)


def to_dtype(batch, dtype: torch.dtype):
    """The batch with its floating-point tensors converted to `dtype` (token ids etc. untouched)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(dtype) if batch.is_floating_point() else batch
    if isinstance(batch, list | tuple):
        return type(batch)(to_dtype(item, dtype) for item in batch)
    if isinstance(batch, dict):
        return {key: to_dtype(value, dtype) for key, value in batch.items()}
    return batch


def format_table(rows: list[GradCheckRow], rtol: float, atol: float) -> str:
    """A fixed-width text table: parameter, shape, max abs err, max rel err, ok."""
    header = ("parameter", "shape", "max abs err", "max rel err", "ok")
    lines = [
        (
            row.name,
            str(row.shape),
            f"{row.max_abs_err:.3e}",
            f"{row.max_rel_err:.3e}",
            "yes" if row.ok(rtol, atol) else "NO",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *lines]
    )


def gradcheck(cfg: DictConfig) -> bool:
    """Build data and model as `train` does, check one training batch, print the table.

    Returns True when every row is within `cfg.gradcheck.rtol` / `cfg.gradcheck.atol`.
    """
    check_settings(cfg)
    check = cfg.gradcheck
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build_model(cfg, datamodule).to(DTYPES[check.dtype])
    batch = to_dtype(next(iter(datamodule.train_dataloader())), DTYPES[check.dtype])
    rows = compare_gradients(model, batch)
    print(format_table(rows, check.rtol, check.atol))
    failed = [row.name for row in rows if not row.ok(check.rtol, check.atol)]
    tolerance = f"rtol={check.rtol:g}, atol={check.atol:g}, {check.dtype}"
    if failed:
        print(f"gradcheck FAILED ({tolerance}): {', '.join(failed)}")
    else:
        n = len(rows) - 1
        print(f"gradcheck passed: the loss and {n} parameter{'s' * (n != 1)} agree ({tolerance})")
    return not failed
