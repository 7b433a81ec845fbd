"""The model keys that depend on each other: one line naming both keys and the fix."""

from __future__ import annotations

from helpers.settings_errors import settings_error


def test_embedding_dropout_needs_an_embedding():
    message = settings_error(
        ["model=rnn"], {"model.embedding_dropout": 0.1, "model.embedding_dim": None}
    )
    assert message == (
        "model.embedding_dropout=0.1 drops rows of an embedding and model.embedding_dim is null "
        "(one-hot input); set model.embedding_dim (e.g. 64) or model.embedding_dropout=0"
    )


def test_a_misspelled_dropout_kind_is_refused_not_run_as_standard():
    message = settings_error(["model=rnn"], {"model.dropout_kind": "lcoked"})
    assert message == "model.dropout_kind='lcoked' is not one of standard, locked"


def test_the_gpt_width_must_split_into_its_heads():
    message = settings_error(["model=gpt"], {"model.n_embd": 10, "model.n_head": 4})
    assert message == (
        "model.n_embd=10 is not a multiple of model.n_head=4: each head gets n_embd / n_head of "
        "the width; e.g. model.n_embd=128 model.n_head=4"
    )
