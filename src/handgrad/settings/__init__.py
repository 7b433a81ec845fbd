"""Every config key's allowed values, declared once, one module per config group, checked before
anything heavy is imported (no torch, no Lightning: a mistake costs a second, not five).

    root.py       seed, threads, verbose, optimized_metric, ckpt_path, paths.root
    model.py      model.*: the keys every model takes and each model's own (by its class)
    data.py       data.*: by data module
    optimizer.py  optimizer.*
    scheduler.py  scheduler.*
    trainer.py    trainer.*: limits, intervals, precision, the device
    callbacks.py  callbacks.*: by the callback's name
    rules.py      what a rule is (Range, OneOf, Flag, Holds) and how a table of them is checked

A value a rule does not hold is one ConfigError naming the key, the value and what is allowed;
the command prints it as one line and exits 2. The classes these keys configure trust them.
What needs more than the config (a file, the corpus, the model's parameter names) is checked
where that is read. A key added later gets its rule in its group's module.
"""

from __future__ import annotations

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from handgrad.errors import ConfigError, first_line
from handgrad.settings.callbacks import check_callbacks
from handgrad.settings.data import check_data
from handgrad.settings.model import check_model
from handgrad.settings.optimizer import check_optimizer_settings
from handgrad.settings.root import check_root
from handgrad.settings.scheduler import check_scheduler
from handgrad.settings.trainer import check_device, check_trainer


def check_settings(cfg: DictConfig) -> None:
    """Every key of a composed run config, group by group (the root first: other keys
    interpolate it)."""
    try:
        check_root(cfg)
        check_scheduler(cfg.get("scheduler") or {})
        check_callbacks(cfg.get("callbacks") or {})
        check_data(cfg.get("data") or {})
        check_model(cfg.get("model") or {})
        check_optimizer_settings(cfg.optimizer)
        has_early_stopping = bool((cfg.get("callbacks") or {}).get("early_stopping"))
        check_trainer(cfg.trainer, has_early_stopping=has_early_stopping)
        check_device(cfg.trainer)
    except OmegaConfBaseException as exc:  # e.g. a value interpolating a key that does not exist
        raise ConfigError(f"{exc.full_key or 'config'}: {first_line(exc)}") from exc
