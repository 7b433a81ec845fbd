"""A decoder-only Transformer on tokens (nanoGPT's GPT): the network, its written-out forward and
its hand backward, as a plain nn.Module.

    H⁰ = dropout(W_tok[x] + W_pos[0..T−1]);  Hˡ⁺¹ = Block(Hˡ) for l < n_layer;
    logits = LN_f(H^L) W_headᵀ
with pre-LayerNorm blocks, Block(H) = R + dropout(MLP(LN_2(R))), R = H + dropout(Attn(LN_1(H))),
causal multi-head attention from one fused qkv projection and MLP(C) = GELU(C W_fcᵀ + b_fc)
W_pᵀ + b_p (4·n_embd wide). The equations and their backward are `grads.transformer_stack`.

`forward` runs torch's modules and kernels (F.scaled_dot_product_attention, F.gelu); `trace` is
the same math written out with the `grads` forwards, keeping what `hand_backward` needs. Batches
are batch-major: tokens (B x T), logits (B x T x V), T at most `block_size`.

Init as nanoGPT: every Linear and Embedding weight from N(0, 0.02²), the two residual output
projections (attn.proj, mlp.proj) from N(0, (0.02 / √(2·n_layer))²), biases 0, LayerNorm gains 1.
`bias=False` drops the biases of every Linear and LayerNorm; the head never has one (as nanoGPT's).
`tie_weights=True` makes the head's weight the token embedding's Parameter (`tok_emb.weight`,
listed once by named_parameters).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from handgrad.grads.attention import merge_heads, split_heads
from handgrad.grads.layernorm import layernorm_forward
from handgrad.grads.transformer_stack import (
    LAYERNORM_EPS,
    BlockMasks,
    TransformerTape,
    apply_dropout,
    block_forward,
    transformer_backward,
)

INIT_STD = 0.02


class SelfAttention(nn.Module):
    """Causal multi-head self-attention: one fused qkv projection, the output projection."""

    def __init__(self, n_embd: int, n_head: int, bias: bool):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor, dropout_p: float) -> torch.Tensor:
        q, k, v = (split_heads(part, self.n_head) for part in self.qkv(x).chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        return self.proj(merge_heads(y))  # (B, nh, T, hs) -> (B, T, E)


class MLP(nn.Module):
    def __init__(self, n_embd: int, bias: bool, gelu: str):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.approximate = {"tanh": "tanh", "exact": "none"}[gelu]  # F.gelu's name for the form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate=self.approximate))


class Block(nn.Module):
    """Pre-LayerNorm: x + dropout(attn(ln_1(x))), then + dropout(mlp(ln_2(·)))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, gelu: str):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=LAYERNORM_EPS, bias=bias)
        self.attn = SelfAttention(n_embd, n_head, bias)
        self.ln_2 = nn.LayerNorm(n_embd, eps=LAYERNORM_EPS, bias=bias)
        self.mlp = MLP(n_embd, bias, gelu)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention_p = self.dropout.p if self.training else 0.0
        x = x + self.dropout(self.attn(self.ln_1(x), attention_p))
        return x + self.dropout(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        dropout: float,
        bias: bool,
        tie_weights: bool,
        gelu: str,
    ):
        super().__init__()
        self.n_head, self.gelu, self.dropout_p = n_head, gelu, dropout
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(n_embd, n_head, dropout, bias, gelu) for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd, eps=LAYERNORM_EPS, bias=bias)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        if tie_weights:
            self.head.weight = self.tok_emb.weight
        self.init_weights(n_layer)

    def init_weights(self, n_layer: int) -> None:
        """nanoGPT's: N(0, 0.02²) weights, residual projections / √(2·n_layer), zero biases
        (LayerNorm keeps torch's gain 1, shift 0)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=INIT_STD)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for projection in (block.attn.proj, block.mlp.proj):
                nn.init.normal_(projection.weight, std=INIT_STD / math.sqrt(2 * n_layer))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B x T x V) for tokens (B x T), through torch's modules and fused kernels."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.emb_dropout(self.tok_emb(tokens) + self.pos_emb(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def trace(self, tokens: torch.Tensor) -> tuple[torch.Tensor, TransformerTape]:
        """Logits (B x T x V) and the tape of `forward`'s math, written out with the `grads`
        forwards (`grads.transformer_stack` has the equations).

        In training with dropout > 0 the masks come from the global RNG as F.dropout draws them,
        in this order: the embedding's (B x T x E); then block by block, first block first, the
        attention probabilities' (B x nh x T x T), the attention output's, the MLP output's
        (B x T x E each). A run's masks follow its seed and resume with its RNG state; they are
        not the masks `forward` draws (scaled_dot_product_attention draws its own).
        """
        batch, steps = tokens.shape
        width = self.tok_emb.weight.shape[1]
        positions = torch.arange(steps, device=tokens.device)
        emb_mask = self.dropout_mask((batch, steps, width))
        x = F.embedding(tokens, self.tok_emb.weight) + F.embedding(positions, self.pos_emb.weight)
        x = apply_dropout(x, emb_mask)
        tapes = []
        for block in self.blocks:
            masks = BlockMasks(
                self.dropout_mask((batch, self.n_head, steps, steps)),
                self.dropout_mask((batch, steps, width)),
                self.dropout_mask((batch, steps, width)),
            )
            x, tape = block_forward(
                x, dict(block.named_parameters()), self.n_head, self.gelu, masks
            )
            tapes.append(tape)
        final, *ln_f = layernorm_forward(x, self.ln_f.weight, self.ln_f.bias, LAYERNORM_EPS)
        logits = F.linear(final, self.head.weight)
        return logits, TransformerTape(tokens, emb_mask, tapes, tuple(ln_f), final)

    def dropout_mask(self, shape: tuple[int, ...]) -> torch.Tensor | None:
        """What F.dropout multiplies by (each entry 0 or 1/(1 − p)); None when dropout is off."""
        if not (self.training and self.dropout_p > 0):
            return None
        return F.dropout(self.tok_emb.weight.new_ones(shape), self.dropout_p)

    def hand_backward(self, tape: TransformerTape, grad_logits: torch.Tensor) -> dict:
        """One gradient per parameter (named as `named_parameters`) from dL/dlogits (B x T x V)."""
        return transformer_backward(tape, grad_logits, dict(self.named_parameters()), self.gelu)
