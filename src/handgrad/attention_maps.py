"""The GPT's attention patterns in TensorBoard: what each head of each layer looks at.

Every `every_n_epochs` training epochs and when training ends, the model reads `prefix` (the text
sample's, by default; its last `block_size` characters if it is longer) in eval mode, and for each
layer l one image `attention/layer_<l>` goes to TensorBoard's Images tab at the epoch's end step:
one panel per head, the attention probabilities P[i, j] (row i: the character being read, column j:
the character it attends to; above the diagonal is the future, always 0), with the prefix's
characters along both axes (a space shows as `·`, a newline as `⏎`).

The probabilities are the ones the hand forward keeps for its backward (`Transformer.trace`'s
tape: softmax(Q Kᵀ / √d) with the causal mask, before dropout), so nothing but the model is run.
"""

from __future__ import annotations

import lightning as L
import matplotlib
import torch

from handgrad.callbacks import epoch_end_step
from handgrad.generate import read_prefix

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SHOWN = {" ": "·", "\n": "⏎"}  # how a character the axis would not show is drawn


def attention_probabilities(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's attention probabilities (H x T x T) for one sequence of tokens (T), read in
    eval mode (no dropout) without gradients; the model's mode is restored."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, tape = model.net.trace(tokens.to(model.device).unsqueeze(0))
    model.train(was_training)
    return [block.attention.probs[0].float().cpu() for block in tape.blocks]


def attention_figure(probs: torch.Tensor, chars: list[str], layer: int):
    """One layer's heads side by side, characters along both axes."""
    heads = probs.shape[0]
    fig, axes = plt.subplots(1, heads, figsize=(3.2 * heads, 3.4), squeeze=False)
    labels = [SHOWN.get(c, c) for c in chars]
    for head, ax in enumerate(axes[0]):
        ax.imshow(probs[head].numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(f"layer {layer}, head {head}", fontsize=9)
        ax.set_xticks(range(len(labels)), labels, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel("attends to", fontsize=8)
        if head == 0:
            ax.set_ylabel("reading", fontsize=8)
    fig.tight_layout()
    return fig


class AttentionMaps(L.Callback):
    """Attention images of every layer and head on `prefix` (see the module docstring)."""

    def __init__(self, prefix: str = "time traveller ", every_n_epochs: int = 5):
        self.prefix = prefix
        self.every_n_epochs = every_n_epochs
        self.drawn_step: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A prefix the model cannot read (a character its training text lacks) fails now."""
        read_prefix(self.prefix, trainer.datamodule.vocab, "callbacks.attention_maps.prefix")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.draw(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.draw(trainer, pl_module)

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log each layer's image at the current epoch end step, unless they are there already."""
        step = epoch_end_step(trainer)
        writers = [
            logger.experiment
            for logger in trainer.loggers
            if hasattr(logger.experiment, "add_figure")
        ]
        if not trainer.is_global_zero or not writers or step == self.drawn_step:
            return
        vocab = trainer.datamodule.vocab
        text = read_prefix(self.prefix, vocab, "callbacks.attention_maps.prefix")
        text = text[-pl_module.block_size :]
        layers = attention_probabilities(pl_module, vocab.encode(text))
        for layer, probs in enumerate(layers):
            fig = attention_figure(probs, list(text), layer)
            for writer in writers:
                writer.add_figure(f"attention/layer_{layer}", fig, global_step=step, close=False)
            plt.close(fig)
        self.drawn_step = step
