"""What a training epoch accumulates from one batch to the next, for every model: the carried
state, the batch-weighted mean of the training loss, and the seconds trained.

`HandgradModule` keeps one `TrainingEpoch` (`self.epoch`), makes a new one when an epoch starts and
writes it into every checkpoint (under DDP every rank's), so a run interrupted mid-epoch resumes
with the state, sums and clock an uninterrupted run would have had at that batch.
"""

from __future__ import annotations

import time

import torch

from handgrad.models.compiled import compile_seconds

# What a batch hands on to the next (the char-RNN's hidden state: a tensor, or the LSTM's (h, c)).
CarriedState = torch.Tensor | tuple[torch.Tensor, ...] | None


class WeightedMean:
    """The mean of a per-batch value x_b over an epoch's batches, each weighted by its size n_b
    (its rows, or its tokens):

        mean = Σ_b x_b n_b / Σ_b n_b

    so a short last batch counts for what it holds (for the char-RNN's cross-entropy: the mean per
    token, whose exp is the epoch's perplexity, not a mean of per-batch perplexities). Two running
    sums, kept as tensors on the value's device (no host sync per step); under DDP `compute` adds
    every rank's.
    """

    def __init__(self, total: torch.Tensor | None = None, count: int = 0):
        self.total, self.count = total, count

    def update(self, value: torch.Tensor, count: int) -> None:
        weighted = value.detach().float() * count
        self.total = weighted if self.total is None else self.total + weighted
        self.count += count

    def compute(self, strategy) -> torch.Tensor:
        sums = torch.stack([self.total, self.total.new_tensor(float(self.count))])
        total, count = strategy.reduce(sums, reduce_op="sum")
        return total / count


class TrainingEpoch:
    """The state the next batch starts from (detached; None: the model's initial state), the
    training loss's `WeightedMean`, and the seconds from the epoch's first batch start to its last
    batch end, less the seconds torch.compile spent compiling in between (after a resume: the
    seconds before the interrupt plus those after).
    """

    def __init__(self):
        self.carried_state: CarriedState = None
        self.loss = WeightedMean()
        self.seconds = 0.0
        self._clock: float | None = None  # perf_counter() minus the seconds already counted
        self._compile_clock = 0.0  # compile_seconds() when the clock started

    def start_clock(self) -> None:
        if self._clock is None:
            self._clock = time.perf_counter() - self.seconds
            self._compile_clock = compile_seconds()

    def stop_clock(self) -> None:
        compiling = compile_seconds() - self._compile_clock
        self.seconds = time.perf_counter() - self._clock - compiling

    def throughput(self) -> float:
        """What the batches weighed (rows, tokens) per second trained."""
        return self.loss.count / max(self.seconds, 1e-9)

    def state_dict(self) -> dict:
        """Plain tensors and numbers (a tuple state, the LSTM's (h, c), becomes a list)."""
        state = self.carried_state
        return {
            "carried_state": list(state) if isinstance(state, tuple) else state,
            "loss_total": self.loss.total,
            "loss_count": self.loss.count,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        state = _current_layout(state)
        carried = state["carried_state"]
        self.carried_state = tuple(carried) if isinstance(carried, list) else carried
        self.loss = WeightedMean(state["loss_total"], state["loss_count"])
        self.seconds = state["seconds"]
        self._clock = None


def _current_layout(state: dict) -> dict:
    """A training epoch's state as `TrainingEpoch.state_dict` writes it, from that layout or from
    one written before every model shared it: the regression models' {total, count} (rows) and
    the char-RNN's {carried_state, loss_total, tokens, seconds}."""
    if "total" in state:
        return {
            "carried_state": None,
            "loss_total": state["total"],
            "loss_count": state["count"],
            "seconds": 0.0,
        }
    if "tokens" in state:
        return {**state, "loss_count": state["tokens"]}
    return state


def detach_state(state: CarriedState) -> CarriedState:
    """The state without its graph: gradients stop at the batch boundary."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()
