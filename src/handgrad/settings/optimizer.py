"""The `optimizer.*` keys: the allowed range of every optimizer setting, one rule each, for
torch's optimizers and ours.

`check_optimizer_settings` is what `check_settings` runs on the config before anything is built;
the hand optimizers' constructors run the same rules on what they are given (they are also built
directly, in tests and notebooks). It imports no torch, so a bad value on the command line fails
fast.
"""

from __future__ import annotations

from collections.abc import Mapping

from handgrad.errors import is_number, require

NON_NEGATIVE = ("momentum", "weight_decay", "eps")
FLAGS = ("nesterov", "amsgrad")
# optimizer.decay: which parameters weight decay applies to (optim/param_groups.py's DECAY_RULES)
DECAY = ("all", "matrices", "matrices_no_embeddings")


def check_optimizer_settings(settings: Mapping) -> None:
    """lr > 0; momentum, weight_decay, eps >= 0; dampening in [0, 1]; betas two numbers in [0, 1);
    nesterov and amsgrad booleans; nesterov only with momentum > 0 and no dampening; decay one of
    DECAY.
    Settings that are absent are not checked (each optimizer takes its own subset)."""
    lr = settings.get("lr")
    require(
        is_number(lr) and lr > 0,
        f"optimizer.lr={lr!r}: the learning rate must be a number > 0 (e.g. 0.1; adam: 0.001)",
    )
    for key in NON_NEGATIVE:
        value = settings.get(key, 0.0)
        require(is_number(value) and value >= 0, f"optimizer.{key}={value!r} must be a number >= 0")
    dampening = settings.get("dampening", 0.0)
    require(
        is_number(dampening) and 0 <= dampening <= 1,
        f"optimizer.dampening={dampening!r} must be a number in [0, 1]",
    )
    betas = settings.get("betas")
    if betas is not None:
        betas = list(betas)
        require(
            len(betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in betas),
            f"optimizer.betas={betas!r} must be two numbers in [0, 1), e.g. [0.9, 0.999]",
        )
    for key in FLAGS:
        value = settings.get(key, False)
        require(isinstance(value, bool), f"optimizer.{key}={value!r} must be true or false")
    decay = settings.get("decay", "all")
    require(decay in DECAY, f"optimizer.decay={decay!r} is not one of {', '.join(DECAY)}")
    momentum, dampening = settings.get("momentum", 0.0), settings.get("dampening", 0.0)
    require(
        not settings.get("nesterov") or (momentum > 0 and dampening == 0),
        f"optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0, "
        f"got momentum={momentum}, dampening={dampening}",
    )
