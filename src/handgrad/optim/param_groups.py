"""Optimizer parameter groups: a learning rate per parameter name or glob (`optimizer.lr_by_param`)
and which parameters weight decay applies to (`optimizer.decay`)."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

import torch

from handgrad.errors import ConfigError, is_number

# optimizer.decay -> does weight decay apply to this parameter? (handgrad.settings checks the name)
DECAY_RULES = {
    # every parameter: what weight_decay alone means in torch
    "all": lambda param, is_embedding: True,
    # weights of 2 or more dimensions (linear and attention matrices, embeddings, convolution
    # kernels), not biases or LayerNorm gains and shifts: nanoGPT's `configure_optimizers`
    "matrices": lambda param, is_embedding: param.ndim >= 2,
    # the same without the embedding tables (nn.Embedding weights; with tied weights the head,
    # which is the token embedding, too)
    "matrices_no_embeddings": lambda param, is_embedding: param.ndim >= 2 and not is_embedding,
}


def embedding_tables(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights of the `nn.Embedding`s in `module` (the GPT's tok_emb and pos_emb, the
    char-RNN's `embedding`): matrices by shape, lookup tables by use."""
    return [m.weight for m in module.modules() if isinstance(m, torch.nn.Embedding)]


def param_groups(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
    lr_by_param: dict[str, float],
    decay: str = "all",
    embeddings: Iterable[torch.nn.Parameter] = (),
) -> list[dict]:
    """Split parameters into optimizer groups by learning rate and by weight decay.

    `lr_by_param` maps a parameter name or glob pattern (`b`, `layers.*.bias`) to its learning rate;
    the first matching pattern wins, unmatched parameters form one group with the optimizer's lr.
    A pattern that matches nothing is a config error (it is almost always a typo).

    `decay` names a rule of DECAY_RULES; with any rule but `all`, the parameters it leaves out go
    into groups of their own with `weight_decay: 0.0` (the others keep the optimizer's). Which
    parameters are embedding tables is `embeddings` (`embedding_tables(model)`), by identity.

    Groups come in order: the optimizer's lr first, then each pattern's; within each, the
    decayed parameters before the others. Empty groups are left out.
    """
    named = list(named_parameters)
    rule = DECAY_RULES[decay]
    embedding_ids = {id(p) for p in embeddings}
    groups: dict[tuple[str | None, bool], list[torch.nn.Parameter]] = {}
    for name, param in named:
        pattern = next((p for p in lr_by_param if fnmatchcase(name, p)), None)
        decayed = rule(param, id(param) in embedding_ids)
        groups.setdefault((pattern, decayed), []).append(param)
    for pattern, lr in lr_by_param.items():
        if not (is_number(lr) and lr >= 0):
            raise ConfigError(f"optimizer.lr_by_param.{pattern}={lr!r} must be a number >= 0")
    matched = {pattern for pattern, _ in groups}
    unused = [p for p in lr_by_param if p not in matched]
    if unused:
        names = ", ".join(name for name, _ in named)
        raise ConfigError(
            f"optimizer.lr_by_param: {', '.join(unused)} matches no parameter; "
            f"the model's parameters are: {names}"
        )
    result = []
    for pattern in [None, *lr_by_param]:
        lr = {} if pattern is None else {"lr": float(lr_by_param[pattern])}
        for decayed in (True, False):
            if (pattern, decayed) in groups:
                no_decay = {} if decayed else {"weight_decay": 0.0}
                result.append({"params": groups[pattern, decayed], **lr, **no_decay})
    return result
