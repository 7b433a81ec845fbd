"""CPU DDP (2 processes, gloo, device=ddp): rank-aware samplers, hand gradients averaged across
ranks, identical replicas, one output dir per job."""

from __future__ import annotations

import inspect
import json
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from handgrad.data.row_batches import BatchRows
from handgrad.data.timemachine import TimeMachineDataModule
from handgrad.errors import ConfigError
from handgrad.run.task import train
from helpers.ddp_runs import train_ddp
from helpers.runs import compose_config, run_script


def assert_close(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


# --- samplers: each rank's share ----------------------------------------------------------------


def test_batch_rows_deal_whole_batches_equally_to_ranks():
    single = [b.tolist() for b in BatchRows(50, 10, shuffle=True, seed=3)]
    shares = [list(BatchRows(50, 10, shuffle=True, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert [len(s) for s in shares] == [3, 3]  # 5 batches: rank 1 repeats the first one
    assert [b.tolist() for b in shares[0]] == single[0::2]
    assert [b.tolist() for b in shares[1]] == [*single[1::2], single[0]]
    val = [list(BatchRows(50, 10, False, rank=r, world_size=2, pad=False)) for r in (0, 1)]
    assert sorted(torch.cat([*val[0], *val[1]]).tolist()) == list(range(50))  # no repeats
    (full_batch,) = BatchRows(8, 8, shuffle=False, rank=1, world_size=2)
    assert full_batch.tolist() == list(range(8))  # one batch, two ranks: both train on it


def attached(datamodule, rank: int, world_size: int):
    datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=world_size)
    return datamodule


@pytest.fixture
def tiny_corpus(time_machine):
    """Makes a small DataModule over the real text (keyword arguments override its options)."""

    def make(**kwargs) -> TimeMachineDataModule:
        options = dict(path=str(time_machine), max_tokens=3000, batch_size=6, num_steps=5, seed=1)
        return TimeMachineDataModule(**{**options, **kwargs})

    return make


def epoch_batches(loader, epoch: int = 2) -> list[torch.Tensor]:
    loader.sampler.set_epoch(epoch)
    return [x for x, _ in loader]


def test_sequential_sampling_splits_rows_so_every_rank_continues_its_rows(tiny_corpus):
    single = epoch_batches(tiny_corpus(sampling="sequential").train_dataloader())
    ranks = [
        epoch_batches(attached(tiny_corpus(sampling="sequential"), r, 2).train_dataloader())
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for k, batch in enumerate(single):
        assert torch.equal(torch.cat([ranks[0][k], ranks[1][k]]), batch)  # rows 0-2 | rows 3-5
    val = [attached(tiny_corpus(), r, 2).val_dataloader() for r in (0, 1)]
    single_val = list(tiny_corpus().val_dataloader())
    for (x0, _), (x1, _), (x, _) in zip(*val, single_val, strict=True):
        assert torch.equal(torch.cat([x0, x1]), x)


def test_random_sampling_deals_out_whole_batches(tiny_corpus):
    single = epoch_batches(tiny_corpus().train_dataloader())
    ranks = [epoch_batches(attached(tiny_corpus(), r, 2).train_dataloader()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == -(-len(single) // 2)
    assert all(torch.equal(a, b) for a, b in zip(ranks[0], single[0::2], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(ranks[1], single[1::2], strict=False))


def test_sequential_rows_fewer_than_ranks_is_a_config_error(tiny_corpus):
    with pytest.raises(ConfigError, match="data.batch_size=1 is smaller than the 2 DDP"):
        attached(tiny_corpus(batch_size=1, sampling="sequential"), 0, 2).train_dataloader()


# --- training under DDP -------------------------------------------------------------------------

LINEAR = ["model=linear", "trainer.max_epochs=2", "optimizer.lr=0.1"]
RNN = [
    "model=rnn",
    "model.cell=scratch",
    "model.hidden_size=16",
    "data.max_tokens=2000",
    "data.batch_size=8",
    "data.num_steps=10",
    "data.sampling=sequential",
    "optimizer=sgd",
    "optimizer.lr=1.0",
    "trainer.max_epochs=2",
    "callbacks.text_sample=null",
]


def test_linear_ddp_hand_equals_autograd_and_ranks_agree(tmp_path):
    metric, (auto0, auto1) = train_ddp(tmp_path / "autograd", [*LINEAR, "model.backward=autograd"])
    hand_metric, (hand0, hand1) = train_ddp(tmp_path / "hand", [*LINEAR, "model.backward=hand"])
    assert_close(auto0, auto1, atol=0)
    assert_close(hand0, hand1, atol=0)
    assert_close(hand0, auto0)
    assert auto0["w"].abs().sum() > 0.5  # it trained (w starts near 0)
    # train() returns rank 0's synced val/loss in this (the main) process and writes metrics.json.
    logged = json.loads((tmp_path / "autograd" / "metrics.json").read_text())
    assert logged["status"] == "ok" and logged["best/val/loss"] == pytest.approx(metric)
    assert logged["learned"]["w"] == pytest.approx(auto0["w"].item())
    assert hand_metric == pytest.approx(metric, rel=1e-5)
    assert (tmp_path / "autograd" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.corpus
def test_rnn_ddp_hand_equals_autograd_ranks_agree_and_rows_split_like_one_process(tmp_path):
    _, (auto0, auto1) = train_ddp(tmp_path / "autograd", [*RNN, "model.backward=autograd"])
    hand_ppl, (hand0, hand1) = train_ddp(tmp_path / "hand", [*RNN, "model.backward=hand"])
    assert_close(auto0, auto1, atol=0)
    assert_close(hand0, hand1, atol=0)
    assert_close(hand0, auto0)
    # Sequential batches split 4 + 4 rows: the mean of the two ranks' mean losses is the mean
    # over all 8 rows, so 2-process training follows the 1-process run.
    cfg = compose_config(["device=cpu", *RNN, "model.backward=hand"], tmp_path / "one")
    single_ppl = train(cfg)
    single = torch.load(tmp_path / "one" / "checkpoints" / "last.ckpt", weights_only=True)
    assert_close(hand0, {name: single["state_dict"][name] for name in hand0}, atol=1e-5)
    assert hand_ppl == pytest.approx(single_ppl, rel=1e-5)


@pytest.mark.slow  # two DDP jobs of two processes
def test_ddp_multirun_makes_one_dir_per_job(tmp_path):
    result = run_script(
        "train.py",
        "-m",
        "model=linear",
        "device=ddp",
        "model.backward=autograd,hand",
        "trainer.max_epochs=1",
        f"paths.root={tmp_path / 'outputs'}",
        cwd=tmp_path,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]  # no lightning_logs/
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["multirun"]
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").iterdir()
    job_dirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in job_dirs] == ["0_model.backward=autograd", "1_model.backward=hand"]
    for job_dir in job_dirs:
        assert json.loads((job_dir / "metrics.json").read_text())["status"] == "ok"
        assert (job_dir / "checkpoints" / "last.ckpt").exists()
        assert not list(job_dir.rglob("lightning_logs"))


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("ddp", {"accelerator": "auto", "devices": 2, "strategy": "ddp_fork"}),
        ("cpu_bf16", {"accelerator": "cpu", "devices": 1, "precision": "bf16-mixed"}),
        ("gpu", {"accelerator": "gpu", "devices": 1, "precision": "32-true"}),
        ("gpu_bf16", {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"}),
        (
            "multi_gpu",
            {
                "accelerator": "gpu",
                "devices": -1,
                "strategy": "ddp_spawn",
                "precision": "bf16-mixed",
            },
        ),
    ],
)
def test_device_configs_compose_into_trainer_arguments(tmp_path, device, expected):
    """GPU configs can only be composed here (no GPU): their keys are Trainer arguments."""
    trainer = compose_config([f"device={device}"], tmp_path).trainer
    assert {key: trainer[key] for key in expected} == expected
    assert trainer.use_distributed_sampler is False
    assert set(trainer) <= set(inspect.signature(L.Trainer).parameters)


@pytest.mark.slow  # three interpreters (the CLI and two ranks) start: ~11 s on 2 cores
def test_ddp_single_run_cli_makes_one_run_dir(tmp_path):
    """model=rnn (fused LSTM, random sampling: whole batches dealt out) through the real CLI."""
    result = run_script(
        "train.py",
        "model=rnn",
        "device=ddp",
        "model.hidden_size=16",
        "data.max_tokens=2000",
        "data.batch_size=8",
        "data.num_steps=10",
        "trainer.max_epochs=1",
        "callbacks.text_sample.every_n_epochs=1",
        f"paths.root={tmp_path / 'outputs'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]  # no lightning_logs/
    (run_dir,) = (tmp_path / "outputs" / "runs").glob("*/*")
    assert run_dir.name.endswith("_rnn")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["best/val/ppl"] > 1
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} >= {"last.ckpt"}
