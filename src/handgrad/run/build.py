"""Building a run's parts from its config: data, model (with optimizer and scheduler), logger.

Each part is `hydra.utils.instantiate`d from its config node; a key the part does not take
becomes a one-line ConfigError naming the key.
"""

from __future__ import annotations

import contextlib
import inspect
import re

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from handgrad.errors import ConfigError
from handgrad.optim.param_groups import param_groups


def build_part(node, key: str, **kwargs):
    """`hydra.utils.instantiate(node, **kwargs)` for the config part `key` (model, data, ...);
    a key the class does not take (`+model.foo=1`) or lacks becomes a one-line ConfigError."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
        if isinstance(cause, TypeError) and unknown:
            target = str(node.get("_target_", key)).rsplit(".", 1)[-1]
            raise ConfigError(
                f"{key}.{unknown[1]} is not a setting of {target}; remove it or check the "
                f"spelling (`--cfg job` prints the {key}.* keys)"
            ) from exc
        if isinstance(cause, TypeError) and "required positional argument" in str(cause):
            raise ConfigError(f"{key}: {cause}; set the missing {key}.* key") from exc
        raise


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """Instantiate `cfg.model` with the optimizer, scheduler, per-parameter lrs and data facts."""
    optimizer_cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    lr_by_param = optimizer_cfg.pop("lr_by_param", None) or {}
    decay = optimizer_cfg.pop("decay", "all")  # the model's param groups apply it
    optimizer = build_part(optimizer_cfg, "optimizer")
    scheduler, monitor = None, None
    if cfg.get("scheduler"):
        scheduler_cfg = OmegaConf.to_container(cfg.scheduler, resolve=True)
        monitor = scheduler_cfg.pop("monitor", None)
        scheduler = build_part(scheduler_cfg, "scheduler")
    model = build_part(
        cfg.model,
        "model",
        optimizer=optimizer,
        lr_by_param=lr_by_param,
        decay=decay,
        scheduler=scheduler,
        scheduler_monitor=monitor,
        **facts_taken(cfg.model, datamodule.model_facts()),
    )
    param_groups(model.named_parameters(), lr_by_param)  # a typo fails now, not after set-up
    return model


def facts_taken(node, facts: dict) -> dict:
    """The data's facts (`model_facts`) that the model class of `node` takes: those an
    `__init__` along its class hierarchy names (the char-RNN takes vocab_size, the GPT vocab_size
    and block_size; a subclass passing `*args, **kwargs` on takes its parents')."""
    try:
        model_class = get_class(node["_target_"])
    except Exception:  # an unknown class: instantiating it says so
        return facts
    names = set()
    for cls in model_class.__mro__:
        if "__init__" in vars(cls):
            with contextlib.suppress(ValueError, TypeError):  # a C type's __init__ has none
                names |= set(inspect.signature(vars(cls)["__init__"]).parameters)
    return {name: value for name, value in facts.items() if name in names}


def build_logger(cfg: DictConfig, checkpoint: dict | None = None):
    """The configured logger (False for `logger=null`).

    Continuing from `checkpoint`, TensorBoard is told to purge what the interrupted run logged
    after the checkpoint's step, so the resumed curves have no duplicate steps.
    """
    if not cfg.get("logger"):
        return False
    if checkpoint is None:
        return instantiate(cfg.logger)
    return instantiate(cfg.logger, purge_step=checkpoint["global_step"])
