"""The char-RNN's AWD-LSTM regularisers (`model.weight_drop`, `model.dropout_kind=locked`,
`model.embedding_dropout`) in real runs: a run interrupted mid-epoch resumes bit-identically to a
run never interrupted (their masks come from the checkpointed RNG), in both backward modes, in
float32 and bfloat16; `model.compile=true` and DDP train with them; and checkpoints keep torch's
own parameter names, so a checkpoint written before the keys existed loads into a model with them
on.
The gradients themselves are checked in tests/grads/test_stacked_rnn.py."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from handgrad.models.char_rnn import CharRNN
from handgrad.run.task import train
from helpers.ddp_runs import train_ddp
from helpers.run_files import last_checkpoint, scalars
from helpers.runs import compose_config
from helpers.same_tensors import assert_same_tensors

QUIET = ["device=cpu", "callbacks.progress_bar.refresh_rate=0", "trainer.log_every_n_steps=1"]
AWD = [
    "model=rnn", "model.hidden_size=16", "model.num_layers=2", "data.max_tokens=2000",
    "data.batch_size=8", "data.num_steps=8", "data.sampling=sequential",
    "trainer.max_time=null", "callbacks.early_stopping=null", "callbacks.text_sample=null",
    "model.embedding_dim=8", "model.embedding_dropout=0.1", "model.weight_drop=0.3",
    "model.dropout_kind=locked", "model.dropout=0.3",
]  # fmt: skip
BF16 = "device=cpu_bf16"  # after QUIET's device=cpu: the later override wins
CASES = {
    "autograd": [*AWD, "model.backward=autograd"],
    "hand": [*AWD, "model.backward=hand"],
    "autograd-bf16": [*AWD, "model.backward=autograd", BF16],
    "hand-bf16": [*AWD, "model.backward=hand", BF16],
}
PRE_CONTRACT_LSTM = Path(__file__).resolve().parents[1] / "fixtures" / "pre_contract" / "lstm.ckpt"


def run(tmp_path, name: str, overrides: list[str], after_step: int | None = None) -> Path:
    """train() in this process; with `after_step`, interrupted by SIGTERM after that step."""
    run_dir = tmp_path / name
    cfg = compose_config([*QUIET, *overrides], run_dir)
    if after_step is None:
        train(cfg)
        return run_dir
    with open_dict(cfg):
        cfg.callbacks.signal_at = {
            "_target_": "helpers.interrupts.SignalAt",
            "after_step": after_step,
        }
    with pytest.raises(SystemExit) as stopped:
        train(cfg)
    assert stopped.value.code == 143
    return run_dir


@pytest.mark.corpus
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] if n.endswith("bf16") else []) for n in CASES],
)
def test_a_mid_epoch_interrupt_resumes_bit_identically(tmp_path, name):
    overrides = [*CASES[name], "trainer.max_epochs=3"]
    straight = run(tmp_path, "straight", overrides)
    per_epoch = last_checkpoint(straight)["global_step"] // 3
    assert per_epoch >= 3, "the interrupt must land inside an epoch"
    stop = per_epoch + per_epoch // 2  # the middle of the second epoch
    interrupted = run(tmp_path, "interrupted", overrides, after_step=stop)
    assert (last_checkpoint(interrupted)["epoch"], last_checkpoint(interrupted)["global_step"]) == (
        1,
        stop,
    )
    ckpt = interrupted / "checkpoints" / "last.ckpt"
    train(compose_config([*QUIET, *overrides, f"ckpt_path={ckpt}"], interrupted))
    a, b = last_checkpoint(straight), last_checkpoint(interrupted)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert_same_tensors(a["state_dict"], b["state_dict"], "state_dict")
    assert_same_tensors(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    assert scalars(interrupted) == scalars(straight)
    hparams = a["hyper_parameters"]
    assert (hparams["weight_drop"], hparams["dropout_kind"]) == (0.3, "locked")


def test_a_checkpoint_from_before_the_keys_loads_into_a_model_with_them_on():
    """Same parameters, same names (torch's own: net.rnn.weight_hh_l0, ...): strict loading."""
    state = torch.load(PRE_CONTRACT_LSTM, weights_only=True)["state_dict"]
    vocab = state["net.head.weight"].shape[0]
    model = CharRNN(
        vocab, hidden_size=8, num_layers=2, dropout=0.3, weight_drop=0.3, dropout_kind="locked"
    )
    model.load_state_dict(state)  # strict: no key missing, none unexpected
    assert "net.rnn.weight_hh_l1" in state


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow  # compiling: tens of seconds
@pytest.mark.corpus
@pytest.mark.parametrize("backward", ["autograd", "hand"])
def test_compiled_runs_train_with_the_keys(tmp_path, backward, caplog):
    """Compiled, not the eager fallback: no "compiling ... failed" line, compile seconds
    counted; the fused kernel runs eagerly between graphs (autograd), the hand pass is one
    graph. Dropout masks under Inductor come from its own generator (seeded from torch's), so
    the curve is not eager's: finite and learning is what is checked."""
    overrides = [*CASES[backward], "trainer.max_epochs=2", "model.compile=true"]
    with caplog.at_level(logging.WARNING):
        run_dir = run(tmp_path, backward, overrides)
    assert not [r for r in caplog.records if "compiling" in r.getMessage()]
    found = metrics(run_dir)
    assert found["last/time/compile_s"] > 0
    ppl = scalars(run_dir)["train/ppl"]
    first, final = ppl[min(ppl)], ppl[max(ppl)]
    assert math.isfinite(final) and final < first


@pytest.mark.slow  # two runs of two processes
@pytest.mark.corpus
def test_ddp_trains_with_the_keys_in_both_modes_and_the_ranks_agree(tmp_path):
    """device=ddp (2 processes): every rank draws the same masks (same seed), so the replicas stay
    identical, and hand mode (gradients averaged by hand) ends where autograd (DDP's reducer)
    ends, up to float32 round-off."""
    weights = {}
    for backward in ("autograd", "hand"):
        overrides = [*QUIET, *CASES[backward], "trainer.max_epochs=2"]
        _, ranks = train_ddp(tmp_path / backward, overrides)
        assert_same_tensors(ranks[0], ranks[1], backward)
        weights[backward] = ranks[0]
    for name, weight in weights["autograd"].items():
        torch.testing.assert_close(weights["hand"][name], weight, rtol=1e-4, atol=1e-5, msg=name)
