"""Character-level GPT: a decoder-only Transformer language model (nanoGPT's, on characters).

A batch is (X, Y), two (batch, num_steps) LongTensors with Y = X shifted by one character, read
batch-major as they come (the char-RNN reads them time-major). The network is
`models/transformer.py`'s `Transformer`: token and position embeddings, embedding dropout,
`n_layer` pre-LayerNorm blocks (causal multi-head self-attention from one fused qkv projection,
then a 4·n_embd GELU MLP, each with dropout and a residual), a final LayerNorm and the head.
The loss is the mean cross-entropy over all B*T tokens of the batch.

    autograd mode: `forward` through torch's modules and fused kernels
                   (F.scaled_dot_product_attention, F.gelu), differentiated by autograd;
    hand mode:     `net.trace` (the same math written out with `grads/`'s forwards, keeping what
                   the backward needs), then `net.hand_backward` (`grads/transformer_stack.py`:
                   the head, LayerNorm, attention, GELU, linear maps, residuals, dropout with the
                   forward's masks, embeddings; tied weights' two contributions summed).
Both read the same parameters, so one checkpoint trains on in either mode.

The block size (the number of positions the position embedding has) is the data's window length,
`data.num_steps`, given by the data module (`model_facts`) as the vocabulary size is. No state
carries from batch to batch: every window is read from its start.

Metrics and the vocabulary in checkpoints: `models/language_model.py`, as the char-RNN's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from handgrad.grads.cross_entropy import cross_entropy_and_grad
from handgrad.models.handgrad_module import NOT_HYPERPARAMETERS
from handgrad.models.language_model import CharLanguageModel
from handgrad.models.transformer import Transformer


def mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss: mean cross-entropy over the B*T tokens; logits (B x T x V), targets (B x T)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


class GPT(CharLanguageModel):
    """The language model: a `Transformer` over the data's vocabulary and block size.

    `vocab_size` and `block_size` come from the data (`model_facts`); `n_layer`, `n_head`,
    `n_embd`, `dropout`, `bias`, `tie_weights` and `gelu` (tanh | exact) shape the network.
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.1,
        bias: bool = True,
        tie_weights: bool = False,
        gelu: str = "tanh",
        **base_kwargs,
    ):
        super().__init__(**base_kwargs)
        self.save_hyperparameters(ignore=NOT_HYPERPARAMETERS, logger=False)
        self.block_size = block_size
        self.net = Transformer(
            vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias, tie_weights, gelu
        )

    def forward(self, tokens: torch.Tensor, state: None = None) -> torch.Tensor:
        """Logits (B x T x V) for tokens (B x T), T at most `block_size`."""
        return self.net(tokens)

    # --- the contract --------------------------------------------------------------------------
    def loss(self, batch, state: None) -> tuple[torch.Tensor, None]:
        """The batch's mean cross-entropy through `forward`; no state."""
        x, y = batch
        return mean_cross_entropy(self(x), y), None

    def hand_loss_and_grads(self, batch, state: None):
        """The loss and one gradient per parameter: the forward written out (`net.trace`), then
        the hand backward (`net.hand_backward`) from the cross-entropy's dL/dlogits."""
        x, y = batch
        logits, tape = self.net.trace(x)
        loss, grad_logits = cross_entropy_and_grad(logits, y)
        grads = self.net.hand_backward(tape, grad_logits)
        return loss, {f"net.{name}": grad for name, grad in grads.items()}, None

    def reference_loss(self, batch, state: None) -> torch.Tensor:
        """The gradient check's autograd side: the training loss (through torch's kernels), or
        with dropout on, the loss of the written-out forward (`net.trace`), which draws its masks
        as hand mode does (scaled_dot_product_attention draws its own)."""
        if not (self.training and self.net.dropout_p > 0):
            return self.loss(batch, state)[0]
        x, y = batch
        logits, _ = self.net.trace(x)
        return mean_cross_entropy(logits, y)
