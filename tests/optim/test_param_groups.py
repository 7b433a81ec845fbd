"""Optimizer groups: optimizer.lr_by_param (by name or glob, checked values) and optimizer.decay
(weight decay for every parameter, or only matrices, with or without embedding tables) on the
GPT's and the char-RNN's parameters."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hydra.utils import instantiate

from handgrad.errors import ConfigError
from handgrad.models.char_rnn import CharRNN
from handgrad.models.handgrad_module import HandgradModule
from handgrad.models.transformer import Transformer
from handgrad.optim.param_groups import DECAY_RULES, embedding_tables, param_groups
from handgrad.run.build import build_model
from handgrad.settings import optimizer as settings_optimizer
from helpers.runs import compose_config

NAMES = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "head.weight"]


def named() -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, torch.nn.Parameter(torch.zeros(1))) for name in NAMES]


def names_by_group(groups: list[dict], parameters: list) -> list[tuple[float | None, list[str]]]:
    """Each group as (its lr, or None for the optimizer's; the names of its parameters)."""
    name_of = {id(param): name for name, param in parameters}
    return [(g.get("lr"), [name_of[id(p)] for p in g["params"]]) for g in groups]


def test_unmatched_parameters_keep_the_optimizers_lr_in_one_group_first():
    parameters = named()
    groups = param_groups(parameters, {"*.bias": 0.5, "head.*": 0})
    assert names_by_group(groups, parameters) == [
        (None, ["layers.0.weight", "layers.1.weight"]),
        (0.5, ["layers.0.bias", "layers.1.bias"]),
        (0.0, ["head.weight"]),  # lr 0 freezes a parameter: allowed
    ]
    assert all(isinstance(g["lr"], float) for g in groups[1:])  # a YAML 0 becomes 0.0


def test_the_first_matching_pattern_wins_and_no_default_group_when_all_match():
    parameters = named()
    groups = param_groups(parameters, {"layers.0.*": 0.1, "layers.*": 0.2, "head.weight": 0.3})
    assert names_by_group(groups, parameters) == [
        (0.1, ["layers.0.weight", "layers.0.bias"]),
        (0.2, ["layers.1.weight", "layers.1.bias"]),
        (0.3, ["head.weight"]),
    ]


def test_no_patterns_is_one_group_of_every_parameter():
    parameters = named()
    assert names_by_group(param_groups(iter(parameters), {}), parameters) == [(None, NAMES)]


def test_a_pattern_that_matches_nothing_names_the_parameters():
    with pytest.raises(ConfigError) as error:
        param_groups(named(), {"*.bias": 0.5, "bias": 0.1, "emb*": 0.1})
    assert str(error.value) == (
        "optimizer.lr_by_param: bias, emb* matches no parameter; the model's parameters are: "
        + ", ".join(NAMES)
    )


@pytest.mark.parametrize("lr", [-0.1, "0.1", True, math.inf, math.nan, None])
def test_a_learning_rate_that_is_not_a_number_at_least_0_is_a_config_error(lr):
    with pytest.raises(ConfigError) as error:
        param_groups(named(), {"head.weight": lr})
    assert str(error.value) == f"optimizer.lr_by_param.head.weight={lr!r} must be a number >= 0"


# --- optimizer.decay: which parameters weight decay applies to ------------------------------------


class GPTLike(HandgradModule):
    """The GPT's network (`net.tok_emb`, `net.pos_emb`, blocks of LayerNorms, attention and MLP
    linears, `net.ln_f`, `net.head`) under the base class that builds the optimizer."""

    def __init__(self, tie_weights: bool, **base_kwargs):
        super().__init__(**base_kwargs)
        self.net = Transformer(
            vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0, bias=True,
            tie_weights=tie_weights, gelu="tanh",
        )  # fmt: skip


ADAMW = functools.partial(torch.optim.AdamW, lr=0.01, weight_decay=0.1)
LINEAR_WEIGHTS = ("attn.qkv.weight", "attn.proj.weight", "mlp.fc.weight", "mlp.proj.weight")


def decay_by_name(model: HandgradModule) -> dict[str, float]:
    """Each parameter's weight decay in the optimizer the model builds for training."""
    optimizer = model.configure_optimizers()
    name_of = {id(p): name for name, p in model.named_parameters()}
    decay = {name_of[id(p)]: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert len(decay) == len(name_of)  # every parameter once
    return decay


@pytest.mark.parametrize("tie_weights", [False, True])
@pytest.mark.parametrize("decay", ["all", "matrices", "matrices_no_embeddings"])
def test_gpt_decays_its_matrices_not_its_biases_or_layernorms_and_embeddings_by_choice(
    decay, tie_weights
):
    model = GPTLike(tie_weights, optimizer=ADAMW, decay=decay)
    by_name = decay_by_name(model)
    decayed = {name for name, wd in by_name.items() if wd == 0.1}
    assert set(by_name.values()) <= {0.0, 0.1}
    names = set(by_name)
    linears = {n for n in names if n.startswith("net.blocks.") and n.endswith(LINEAR_WEIGHTS)}
    assert len(linears) == 8  # 2 blocks x (qkv, proj, fc, proj)
    embeddings = {"net.tok_emb.weight", "net.pos_emb.weight"}
    # tied: the head's weight is the token embedding, listed once under that name
    head = set() if tie_weights else {"net.head.weight"}
    expected = {
        "all": names,
        "matrices": linears | embeddings | head,
        "matrices_no_embeddings": linears | head,
    }[decay]
    assert decayed == expected  # never a LayerNorm's gain or shift, or a bias (unless all)


@pytest.mark.parametrize(
    ("decay", "not_decayed"),
    [
        ("all", set()),
        ("matrices", {"rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.bias_ih_l1", "rnn.bias_hh_l1"}),
        (
            "matrices_no_embeddings",
            {"rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.bias_ih_l1", "rnn.bias_hh_l1"}
            | {"embedding.weight"},
        ),
    ],
)
def test_char_rnn_decays_its_matrices_and_its_embedding_by_choice(decay, not_decayed):
    model = CharRNN(
        vocab_size=7, cell="lstm", hidden_size=5, num_layers=2, embedding_dim=3,
        optimizer=ADAMW, decay=decay,
    )  # fmt: skip
    by_name = decay_by_name(model)
    not_decayed = {f"net.{name}" for name in not_decayed | {"head.bias"} if decay != "all"}
    assert {name for name, wd in by_name.items() if wd == 0.0} == not_decayed
    assert {name for name, wd in by_name.items() if wd == 0.1} == by_name.keys() - not_decayed


def test_decay_splits_each_learning_rate_group_decayed_first():
    """lr_by_param and decay together: by lr as before, then within each the parameters decay
    leaves out in a group of their own with weight_decay 0."""
    parameters = [(name, torch.nn.Parameter(torch.zeros(2, 2))) for name in NAMES]
    parameters[1] = ("layers.0.bias", torch.nn.Parameter(torch.zeros(2)))
    parameters[3] = ("layers.1.bias", torch.nn.Parameter(torch.zeros(2)))
    groups = param_groups(parameters, {"layers.1.*": 0.5}, decay="matrices")
    assert names_by_group(groups, parameters) == [
        (None, ["layers.0.weight", "head.weight"]),
        (None, ["layers.0.bias"]),
        (0.5, ["layers.1.weight"]),
        (0.5, ["layers.1.bias"]),
    ]
    assert [g.get("weight_decay") for g in groups] == [None, 0.0, None, 0.0]


def test_embedding_tables_are_found_by_module_not_by_name():
    model = GPTLike(tie_weights=False)
    tables = {id(p) for p in embedding_tables(model)}
    named = {name for name, p in model.named_parameters() if id(p) in tables}
    assert named == {"net.tok_emb.weight", "net.pos_emb.weight"}
    # an embedding under another name is still one; a matrix named "embedding" is not
    module = torch.nn.ModuleDict({"lookup": torch.nn.Embedding(3, 2)})
    module.register_parameter("embedding", torch.nn.Parameter(torch.zeros(3, 2)))
    assert [id(p) for p in embedding_tables(module)] == [id(module["lookup"].weight)]


@pytest.mark.parametrize("optimizer", ["adamw", "hand_adamw"])
def test_optimizer_decay_in_the_config_reaches_the_optimizers_groups(optimizer, tmp_path):
    """`optimizer.decay` is not a setting of the optimizer class: the run hands it to the model,
    whose groups apply it (the linear model's w is 1 x 1, its b a vector)."""
    cfg = compose_config(
        ["model=linear", f"optimizer={optimizer}", "optimizer.decay=matrices"], tmp_path
    )
    model = build_model(cfg, instantiate(cfg.data, _convert_="all"))
    assert decay_by_name(model) == {"w": 0.01, "b": 0.0}


def test_the_decay_names_the_settings_allow_are_the_rules_here():
    assert tuple(DECAY_RULES) == settings_optimizer.DECAY
