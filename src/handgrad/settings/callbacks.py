"""The `callbacks.*` keys, by the callback's name in the config (whichever class it names):
Lightning's EarlyStopping and ModelCheckpoint, and handgrad's own callbacks, which take what the
config gives them."""

from __future__ import annotations

from collections.abc import Mapping

from handgrad.errors import require
from handgrad.settings.data import MAX_SEED
from handgrad.settings.rules import Range, check_table

EVERY_N_STEPS = Range(0, integer=True, note="0: off")
CALLBACKS = {
    "early_stopping": {
        "patience": Range(0, integer=True),
        "min_delta": Range(0),
    },
    "model_checkpoint": {
        "save_top_k": Range(-1, integer=True, note="-1: keep every one"),
        "every_n_epochs": Range(0, integer=True),
    },
    "last_checkpoint": {"every_n_seconds": Range(0, note="0: after every epoch")},
    "progress_bar": {"refresh_rate": EVERY_N_STEPS},
    "gradcheck": {"every_n_steps": EVERY_N_STEPS},
    "histograms": {"every_n_steps": EVERY_N_STEPS},
    "stop_on_non_finite": {"every_n_steps": EVERY_N_STEPS},
    "attention_maps": {"every_n_epochs": Range(1, integer=True)},
    "text_sample": {
        "every_n_epochs": Range(1, integer=True),
        "num_chars": Range(1, integer=True),
        "temperature": Range(0, note="0: greedy"),
        "top_k": Range(1, integer=True, nullable=True, note="null: every token"),
        "seed": Range(0, MAX_SEED, integer=True),
    },
}


def check_callbacks(callbacks: Mapping) -> None:
    """Every callback names its class (a node without `_target_` holds settings for a callback
    the config does not have: its group turned off, e.g. model=rnn's callbacks.* keys with
    callbacks=null, or a misspelled name), and its keys are in range."""
    for name, node in callbacks.items():
        require(
            node is None or "_target_" in node,
            f"callbacks.{name} has settings but no callback class (_target_): its group is off "
            f"or the name is misspelled; remove it with ~callbacks.{name}",
        )
        if node is not None:
            check_table(node, f"callbacks.{name}.", CALLBACKS.get(name, {}))
