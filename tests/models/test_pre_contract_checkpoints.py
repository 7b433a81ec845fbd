"""Checkpoints written before the model contract (`models/handgrad_module.py`) load and resume
after it. Each fixture in tests/fixtures/pre_contract/ is the `last.ckpt` of a run interrupted
in the middle of its second epoch, written by the code before the contract (commit 3af4bc4, with
tests/helpers/interrupts.SignalAt) with the overrides below. Resumed by today's code, the run
must end with the weights, optimizer state and step a run of today's code never interrupted ends
with: the old layout of the epoch's state (the char-RNN's carried hidden state and token sums,
the regression models' row sums) is read, and training behaves as it did."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from handgrad.run.task import train
from helpers.corpus import corpus_cases
from helpers.run_files import last_checkpoint
from helpers.runs import compose_config
from helpers.same_tensors import assert_same_tensors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pre_contract"
QUIET = ["device=cpu", "callbacks.progress_bar.refresh_rate=0", "trainer.log_every_n_steps=1"]
CASES = {
    "lstm": [
        "model=rnn",
        "model.hidden_size=8",
        "data.max_tokens=1000",
        "data.batch_size=8",
        "data.num_steps=8",
        "trainer.max_time=null",
        "callbacks.early_stopping=null",
        "model.num_layers=2",
        "model.dropout=0.3",
        "data.sampling=sequential",
        "trainer.max_epochs=3",
        # model=rnn's recipe when the fixture was written (it has changed since)
        *("model.embedding_dim=null", "model.dropout_kind=standard", "model.weight_drop=0"),
        *("model.embedding_dropout=0", "optimizer.lr=0.004"),
    ],
    "mlp-hand": [
        "model=mlp",
        "model.hidden=[8]",
        "data.n_samples=40",
        "data.in_features=6",
        "data.out_features=3",
        "data.batch_size=8",
        "model.backward=hand",
        "optimizer=hand_adam",
        "optimizer.lr=0.01",
        "trainer.max_epochs=3",
    ],
}
STOPPED_AT = {"lstm": 19, "mlp-hand": 7}  # the global step each fixture was interrupted at


@pytest.mark.parametrize("name", corpus_cases(CASES))
def test_a_pre_contract_checkpoint_resumes_as_a_straight_run_ends(tmp_path, name):
    fixture = tmp_path / f"{name}.ckpt"
    shutil.copy(FIXTURES / f"{name}.ckpt", fixture)
    old = torch.load(fixture, weights_only=True)
    assert old["global_step"] == STOPPED_AT[name]
    assert "loss_count" not in old["training_epoch"][0]  # the layout before the contract

    train(compose_config([*QUIET, *CASES[name]], tmp_path / "straight"))
    resumed = tmp_path / "resumed"
    train(compose_config([*QUIET, *CASES[name], f"ckpt_path={fixture}"], resumed))

    straight, ended = last_checkpoint(tmp_path / "straight"), last_checkpoint(resumed)
    assert ended["global_step"] == straight["global_step"] > STOPPED_AT[name]
    assert straight["state_dict"].keys() == old["state_dict"].keys()
    assert_same_tensors(ended["state_dict"], straight["state_dict"], "state_dict")
    assert_same_tensors(ended["optimizer_states"], straight["optimizer_states"], "optimizer")
