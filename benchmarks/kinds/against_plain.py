"""Kind `plain`: `handgrad.run.task.train(cfg)` on a config composed as `scripts/train.py`
composes it, against a plain loop (`benchmarks/plain_loops.py`) with the same model, loss,
optimizer, batches and validation cadence.

Throughput is optimizer steps (or tokens = steps x batch_size x num_steps) over the seconds inside
`trainer.fit` (`time/fit_s` in the run's metrics); the plain loop's clock covers its epochs
(training and validation), not data loading or set-up. Ratio = project / plain, higher is better.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from benchmarks import BenchmarkError
from benchmarks.kinds.two_sided import TwoSided, ratio_target
from benchmarks.plain_loops import AWD_KEYS, GPT_KEYS


class AgainstPlainLoop(TwoSided):
    name = "plain"
    legend = (
        "- plain cases: project = `train(cfg)`, throughput over `time/fit_s`; reference = a plain "
        "PyTorch loop of the same math; ratio = project / reference (higher is better)"
    )
    measured, reference = "project", "plain"

    def jobs(self, cfg, overrides: list[str], work: Path) -> dict[str, dict]:
        return {
            "project": {"program": "project", "overrides": overrides},
            "plain": {"program": "plain", "spec": plain_spec(cfg)},
        }

    def measure(self, cfg) -> tuple[str, Callable[[dict], float]]:
        per_step = tokens_per_step(cfg)
        unit = "tokens/s" if per_step > 1 else "steps/s"
        return unit, lambda run: run["steps"] * per_step / run["fit_s"]

    def verdict(self, case, cfg, runs: dict, medians: dict, ratio: float) -> dict:
        return ratio_target(ratio, case.target, at_least=True)


def tokens_per_step(cfg) -> int:
    """What one optimizer step consumes: batch_size x num_steps tokens, or 1 (a step)."""
    if "num_steps" in cfg.data:
        return cfg.data.batch_size * cfg.data.num_steps
    return 1


def plain_spec(cfg) -> dict:
    """What a plain loop needs from the composed config: data, model, optimizer, epochs, and the
    rest of the recipe the project's Trainer follows (`recipe_spec`)."""
    from omegaconf import OmegaConf

    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    target = optimizer.pop("_target_")
    if not target.startswith("torch.optim.") or optimizer.pop("lr_by_param", None):
        raise BenchmarkError(f"plain loops use torch.optim with one lr, not {target}")
    optimizer.pop("_partial_", None)
    spec = {
        "optimizer": target.removeprefix("torch.optim."),
        "decay": optimizer.pop("decay", "all"),
        "optimizer_kwargs": optimizer,
        "epochs": cfg.trainer.max_epochs,
        "val_every": cfg.trainer.check_val_every_n_epoch,
        "clip": cfg.model.get("clip_grad_norm"),
        **recipe_spec(cfg),
    }
    data, model = cfg.data, cfg.model
    if model._target_.endswith("LinearRegression"):
        plain = (data.batch_size, data.val_fraction, data.x, model.reduction, model.scale)
        if plain != (None, 0, "uniform", "mean", 1):
            raise BenchmarkError(
                "the plain linear regression loop is full-batch on uniform x, no held-out set, "
                "mean squared error"
            )
        w_true = list(data.w_true)
        facts = {"n_samples": data.n_samples, "w_true": w_true, "b_true": data.b_true}
        facts |= {"noise_std": data.noise_std, "init_std": model.init_std}
        facts |= {"data_seed": data.seed, "seed": cfg.seed}
        facts["passes"] = data.passes_per_epoch  # full-batch steps per epoch
        return {**spec, "loop": "linreg", **facts}
    if model._target_.endswith("CharRNN"):
        return {
            **spec,
            "loop": "char_rnn",
            "corpus": corpus_path(data),
            **{k: data[k] for k in ("split", "sampling", "batch_size", "num_steps")},
            **{k: data[k] for k in ("val_fraction", "max_tokens")},
            **{k: model[k] for k in ("cell", "hidden_size", "activation", "init_std")},
            **{k: model[k] for k in ("num_layers", "dropout")},
            **{k: model.get(k, off) for k, off in AWD_KEYS.items()},  # the AWD-LSTM recipe
        }
    if model._target_.endswith("models.gpt.GPT"):
        data_cfg = OmegaConf.to_container(data, resolve=True)
        data_cfg.pop("_target_")
        return {**spec, "loop": "gpt", "data": data_cfg, **{k: model[k] for k in GPT_KEYS}}
    raise BenchmarkError(f"no plain loop for {model._target_}")


def recipe_spec(cfg) -> dict:
    """The parts of a recipe the Trainer and callbacks carry out: precision (`trainer.precision`
    as composed: device=auto resolves to bf16-mixed on a CPU with native bf16), the lr schedule,
    early stopping, the wall-clock budget (`trainer.max_time`, in seconds; None: none)."""
    from omegaconf import OmegaConf

    spec = {
        "precision": str(cfg.trainer.precision),
        "max_time_s": max_time_seconds(cfg.trainer.get("max_time")),
        "scheduler": None,
        "early_stopping": None,
    }
    if cfg.get("scheduler"):
        scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True)
        target = scheduler.pop("_target_")
        scheduler.pop("_partial_", None)
        monitor = scheduler.pop("monitor", None)
        name = target.rsplit(".", 1)[-1]
        if not (target.startswith("torch.optim.lr_scheduler.") or name == "WarmupCosine"):
            raise BenchmarkError(f"no plain version of the scheduler {target}")
        if monitor not in (None, "val/ppl", "val/loss"):
            raise BenchmarkError(f"plain loops monitor val/ppl or val/loss, not {monitor}")
        spec["scheduler"] = {"name": name, "kwargs": scheduler, "monitor": monitor}
    stopping = (cfg.get("callbacks") or {}).get("early_stopping")
    if stopping:
        if (stopping.get("monitor"), stopping.get("mode", "min")) != ("val/ppl", "min"):
            raise BenchmarkError("plain loops stop early on val/ppl (mode min) only")
        spec["early_stopping"] = {
            "patience": stopping.get("patience", 3),  # Lightning's EarlyStopping default
            "min_delta": stopping.get("min_delta", 0.0),
        }
    return spec


def max_time_seconds(max_time) -> float | None:
    """`trainer.max_time` as Lightning reads it ("DD:HH:MM:SS", or a dict of timedelta's
    keywords) in seconds; None for no budget."""
    if max_time is None:
        return None
    if isinstance(max_time, str):
        days, hours, minutes, seconds = (int(part) for part in max_time.split(":"))
        return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    return timedelta(**max_time).total_seconds()


def corpus_path(data) -> str:
    """The text file a Time Machine data config reads: `data.path`, or the download cache's."""
    return data.path or str(Path(data.root).expanduser() / Path(urlparse(data.url).path).name)
