"""What the character-level language models share: the vocabulary in every checkpoint, and the
per-token cross-entropy metrics.

`store_vocabulary` writes the data's vocabulary (a plain list of tokens) and its tokenizer into a
checkpoint, so `handgrad.generate` needs nothing but the file; the char-RNN and the GPT both call
it from `on_save_checkpoint`.

`CharLanguageModel` is a `HandgradModule` that logs, at each epoch's end, `train/ppl` and
`val/ppl` (exp of the token-weighted mean cross-entropy over the epoch; the sums are synced across
processes) in TensorBoard and `metrics.json`, and `train/loss`, `val/loss` (those mean
cross-entropies) and `perf/tokens_per_s` (training tokens over the seconds trained) in
`metrics.json` only: the cross-entropy is the perplexity's log, one curve in two units, and the
throughput is wall-clock time, not a training curve. A subclass's `loss` is the batch's mean
cross-entropy per token; validation counts it (`record_validation`).
"""

from __future__ import annotations

from handgrad.models.handgrad_module import HandgradModule
from handgrad.models.training_epoch import WeightedMean


def store_vocabulary(checkpoint: dict, datamodule) -> None:
    """The data's vocabulary (a plain list of tokens) and tokenizer into `checkpoint`."""
    checkpoint["vocab"] = datamodule.vocab.to_list()
    checkpoint["tokenizer"] = datamodule.vocab.tokenizer


class CharLanguageModel(HandgradModule):
    """A language model on the Time Machine data: per-token cross-entropy metrics, vocabulary in
    checkpoints (see the module docstring)."""

    def __init__(self, **base_kwargs):
        super().__init__(**base_kwargs)
        self.val_cross_entropy = WeightedMean()  # per token

    def batch_weight(self, batch) -> int:
        """Tokens: the epoch's train/loss is the mean cross-entropy per token."""
        return batch[1].numel()

    def record_validation(self, batch, state):
        """Count one validation batch's mean cross-entropy (from `loss`) for its tokens; returns
        the batch's final state."""
        loss, final = self.loss(batch, state)
        self.val_cross_entropy.update(loss, batch[1].numel())
        return final

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log_cross_entropy("train", self.epoch.loss)
        tokens_per_s = self.epoch.throughput()
        self.log("perf/tokens_per_s", tokens_per_s, sync_dist=True, reduce_fx="sum")

    def not_in_tensorboard(self) -> set[str]:
        return {"train/loss", "val/loss", "perf/tokens_per_s"}

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self.val_cross_entropy = WeightedMean()

    def on_validation_epoch_end(self) -> None:
        self.log_cross_entropy("val", self.val_cross_entropy)

    def log_cross_entropy(self, stage: str, mean_ce: WeightedMean) -> None:
        """`<stage>/loss` = token-weighted mean CE of the epoch, `<stage>/ppl` = exp of it."""
        ce = mean_ce.compute(self.trainer.strategy)  # under DDP: every rank's sums
        # sync_dist averages equal values (a no-op) and tells Lightning they are synced (no warning)
        self.log(f"{stage}/loss", ce, sync_dist=True)
        self.log(f"{stage}/ppl", ce.exp(), prog_bar=True, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The vocabulary, so generation needs nothing else, and the epoch's training state (the
        base class; each rank carries its own rows)."""
        super().on_save_checkpoint(checkpoint)
        store_vocabulary(checkpoint, self.trainer.datamodule)
