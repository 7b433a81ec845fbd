"""The `model.*` keys: the ones every model takes (the base class's), and each model's own,
by its class (`model._target_`). A model class not listed here (your own) gets the base keys'
checks."""

from __future__ import annotations

from collections.abc import Mapping

from handgrad.errors import is_int, is_number, require
from handgrad.settings.rules import Flag, Holds, OneOf, Range, check_table

BACKWARDS = ("autograd", "hand")
REDUCTIONS = ("mean", "sum")
# grads/activations.py's ACTIVATIONS has one function per name (tests/test_settings.py checks).
ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")
INITS = ("torch", "normal")
CELLS = ("scratch", "rnn", "gru", "lstm")
RECURRENT_ACTIVATIONS = ("tanh", "relu")  # what nn.RNN offers; gru and lstm are tanh only
DROPOUT_KINDS = ("standard", "locked")


def _positive(value) -> bool:
    return is_number(value) and value > 0


def _widths(value) -> bool:
    return isinstance(value, list | tuple) and all(is_int(h) and h >= 1 for h in value)


EVERY_MODEL = {
    "backward": OneOf(BACKWARDS),
    "clip_grad_norm": Holds(
        lambda v: v is None or _positive(v), "must be > 0, or null for no clipping"
    ),
    "compile": Flag(),
}
REGRESSION = {
    "reduction": OneOf(REDUCTIONS),
    "scale": Holds(_positive, "must be > 0"),
    "init_std": Range(0, open=True),
}
MLP = {
    **REGRESSION,
    "hidden": Holds(_widths, "must be a list of layer widths >= 1, e.g. [100] or [] for none"),
    "activation": OneOf(ACTIVATIONS),
    "output_activation": OneOf(ACTIVATIONS),
    "bias": Flag(),
    "init": OneOf(INITS),
}
CHAR_RNN = {
    "cell": OneOf(CELLS),
    "activation": OneOf(RECURRENT_ACTIVATIONS),
    "hidden_size": Holds(lambda v: is_int(v) and v >= 1, "must be >= 1"),
    "num_layers": Holds(lambda v: is_int(v) and v >= 1, "must be >= 1"),
    "dropout": Holds(lambda v: is_number(v) and 0 <= v < 1, "must be in [0, 1)"),
    "embedding_dim": Range(1, integer=True, nullable=True, note="null: one-hot input"),
    "init_std": Range(0, open=True),
    # AWD-LSTM's regularisers (fused cells): DropConnect on W_hh, locked dropout, embedding rows
    "weight_drop": Holds(lambda v: is_number(v) and 0 <= v < 1, "must be in [0, 1)"),
    "dropout_kind": OneOf(DROPOUT_KINDS),
    "embedding_dropout": Holds(lambda v: is_number(v) and 0 <= v < 1, "must be in [0, 1)"),
}


GELUS = ("tanh", "exact")
GPT = {
    "n_layer": Range(1, integer=True),
    "n_head": Range(1, integer=True),
    "n_embd": Range(1, integer=True),
    "dropout": CHAR_RNN["dropout"],
    "bias": Flag(),
    "tie_weights": Flag(),
    "gelu": OneOf(GELUS),
}


def check_gpt(model: Mapping) -> None:
    """Heads that split the width evenly."""
    n_embd, n_head = model.get("n_embd"), model.get("n_head")
    require(
        n_embd % n_head == 0,
        f"model.n_embd={n_embd} is not a multiple of model.n_head={n_head}: each head gets "
        "n_embd / n_head of the width; e.g. model.n_embd=128 model.n_head=4",
    )


def check_char_rnn(model: Mapping) -> None:
    """The activation the cell offers, and an embedding for embedding dropout to drop rows of."""
    cell, activation = model.get("cell", "lstm"), model.get("activation", "tanh")
    require(
        activation == "tanh" or cell in ("scratch", "rnn"),
        f"model.activation={activation} needs model.cell=scratch or rnn ({cell} uses tanh)",
    )
    dropout = model.get("embedding_dropout", 0.0)
    require(
        not dropout or model.get("embedding_dim") is not None or cell == "scratch",
        f"model.embedding_dropout={dropout} drops rows of an embedding and model.embedding_dim "
        "is null (one-hot input); set model.embedding_dim (e.g. 64) or model.embedding_dropout=0",
    )


# model._target_ -> (its keys' rules, checks that read several keys)
MODELS = {
    "handgrad.models.linear.LinearRegression": (REGRESSION, []),
    "handgrad.models.mlp.MLP": (MLP, []),
    "handgrad.models.char_rnn.CharRNN": (CHAR_RNN, [check_char_rnn]),
    "handgrad.models.gpt.GPT": (GPT, [check_gpt]),
}


def check_model(model: Mapping) -> None:
    check_table(model, "model.", EVERY_MODEL)
    table, checks = MODELS.get(model.get("_target_"), ({}, []))
    check_table(model, "model.", table)
    for check in checks:
        check(model)
