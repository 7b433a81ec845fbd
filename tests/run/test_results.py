"""metrics.json: every number labelled by its source, and the value a run returns."""

from __future__ import annotations

import json

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.run.results import optimized_value, write_metrics
from handgrad.run.task import train
from helpers.runs import compose_config


def test_the_optimized_value_is_the_best_checkpoints_else_the_last_logged():
    results = {"best/val/loss": 0.2, "last/val/loss": 0.3, "last/train/loss": 0.1}
    assert optimized_value(results, "val/loss") == 0.2
    assert optimized_value(results, "train/loss") == 0.1  # validation does not log it
    assert optimized_value(results, "val/ppl") is None


def test_metrics_json_is_replaced_whole(tmp_path):
    write_metrics(tmp_path, {"status": "ok"})
    write_metrics(tmp_path, {"status": "failed", "error": "disk full"})
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


def test_a_run_that_never_validated_reports_its_final_weights_validation(tmp_path):
    overrides = ["trainer.max_epochs=2", "trainer.check_val_every_n_epoch=10"]
    returned = train(compose_config(overrides, tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "best" not in metrics["checkpoints"] and returned == metrics["last/val/loss"]
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert not any(tag.startswith("val/") for tag in events.Tags()["scalars"])


def test_each_checkpoint_is_named_with_the_step_and_epoch_its_file_holds(tmp_path):
    train(compose_config(["trainer.max_epochs=3"], tmp_path))
    places = json.loads((tmp_path / "metrics.json").read_text())["checkpoints"]
    assert set(places) == {"best", "last"}
    for place in places.values():
        checkpoint = torch.load(place["path"], weights_only=True)
        assert (place["epoch"], place["step"]) == (checkpoint["epoch"], checkpoint["global_step"])
