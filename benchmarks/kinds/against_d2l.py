"""Kind `trainer`: the project's whole `trainer.fit` seconds against d2l 1.0.3's `d2l.Trainer.fit`
fitting the book's own model on the same text (`benchmarks/d2l_trainer.py`), with each side's
final validation perplexity. Ratio = d2l seconds / project seconds, higher is better. Skipped,
with the reason, where d2l.torch does not import.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks import BenchmarkError
from benchmarks.kinds.against_plain import corpus_path
from benchmarks.kinds.two_sided import TwoSided

SAME_PPL = 1.02  # "the same val ppl" = the project's at most 2% above d2l's


class AgainstD2LTrainer(TwoSided):
    name = "trainer"
    legend = (
        "- trainer cases: whole-fit seconds of the project and of d2l's own `d2l.Trainer` on the "
        "same recipe and text; ratio = d2l / project (higher is better); val ppl = exp(mean "
        "cross-entropy) on both sides, and the mean of per-batch perplexities d2l plots"
    )
    measured, reference = "project", "d2l"

    def jobs(self, cfg, overrides: list[str], work: Path) -> dict[str, dict]:
        return {  # d2l first: where it cannot run, no project run is wasted
            "d2l": {"program": "d2l", "spec": d2l_spec(cfg)},
            "project": {"program": "project", "overrides": overrides},
        }

    def verdict(self, case, cfg, runs: dict, medians: dict, ratio: float) -> dict:
        speedup = 1 / ratio  # d2l seconds / project seconds
        ppl, notes = trainer_perplexities(runs)
        return {
            "ratio": speedup,
            "target": f">= {case.target:g}x at the same val ppl (<= {SAME_PPL:g} x d2l's)",
            "target_met": speedup >= case.target and ppl["project"] <= SAME_PPL * ppl["d2l"],
            "notes": notes,
        }


def trainer_perplexities(runs: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Median final val ppl (exp of the token-weighted mean cross-entropy) of each side, and the
    table's notes: both ppls, d2l's own printed ppl (the mean of per-batch perplexities) and the
    share of d2l's fit spent plotting."""
    ppl = {
        "project": statistics.median(r["metrics"]["last/val/ppl"] for r in runs["project"]),
        "d2l": statistics.median(r["val_ppl"] for r in runs["d2l"]),
    }
    printed = statistics.median(r["d2l_val_ppl"] for r in runs["d2l"])
    plot_share = statistics.median(r["plot_s"] / r["fit_s"] for r in runs["d2l"])
    notes = {
        "project": f"val ppl {ppl['project']:.3g}",
        "d2l": f"val ppl {ppl['d2l']:.3g}, d2l plots {printed:.3g}, "
        f"plotting {100 * plot_share:.0f}% of its fit",
    }
    return ppl, notes


def d2l_spec(cfg) -> dict:
    """What `d2l.Trainer` needs to train the composed recipe as d2l 1.0 §9.5 does (d2l's
    RNNLMScratch: the scratch tanh cell, N(0, 0.01^2) weights, d2l's split, shuffled windows,
    plain SGD); a recipe d2l's classes cannot express is an error."""
    data, model, optimizer = cfg.data, cfg.model, cfg.optimizer
    book = {
        "data.split": (data.split, "d2l"),
        "data.sampling": (data.sampling, "random"),
        "model.cell": (model.cell, "scratch"),
        "model.activation": (model.activation, "tanh"),
        "model.init_std": (model.init_std, 0.01),
        "optimizer": (optimizer._target_, "torch.optim.SGD"),
        "optimizer.momentum": (optimizer.get("momentum", 0), 0),
        "optimizer.weight_decay": (optimizer.get("weight_decay", 0), 0),
    }
    differ = [
        f"{key}={ours} (d2l: {theirs})" for key, (ours, theirs) in book.items() if ours != theirs
    ]
    if differ:
        raise BenchmarkError(f"d2l.Trainer cannot train this recipe: {', '.join(differ)}")
    return {
        "corpus": corpus_path(data),
        "batch_size": data.batch_size,
        "num_steps": data.num_steps,
        "hidden_size": model.hidden_size,
        "lr": optimizer.lr,
        "clip": model.clip_grad_norm or 0,
        "epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
    }
