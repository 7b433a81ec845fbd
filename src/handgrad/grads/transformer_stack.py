"""Backward pass of a decoder-only pre-LayerNorm Transformer: the block, the stack of blocks, the
final LayerNorm and the head, from dL/dlogits to one gradient per parameter.

The forward is `handgrad.models.transformer.Transformer.trace`; a block's is `block_forward` here.
Tokens x (B x T), E = n_embd, linear maps in nn.Linear's form X Wᵀ + b (W is out x in):
    H⁰     = (W_tok[x] + W_pos[0..T−1]) ⊙ M_emb                          (B x T x E)
    block l = 0..L−1:
        A  = LN_1(Hˡ)                       Z = A W_qkvᵀ + b_qkv           (B x T x 3E)
        Y  = attention(Z)                                                  (grads/attention.py)
        R  = Hˡ + (Y W_oᵀ + b_o) ⊙ M_o                                    (the first residual)
        C  = LN_2(R)                        U = C W_fcᵀ + b_fc             (B x T x 4E)
        Hˡ⁺¹ = R + (GELU(U) W_pᵀ + b_p) ⊙ M_p                             (the second residual)
    Ĥ      = LN_f(H^L)                      logits = Ĥ W_headᵀ             (B x T x V; no bias)
Every M is a dropout mask (entries 0 or 1/(1 − p)) or absent; M_emb, and inside attention the mask
on P. Backward, given G = dL/dlogits, with each piece's own backward (grads/layernorm.py,
grads/attention.py, grads/gelu.py, grads/linear.py, grads/embedding.py):
    dW_head = Σ_(b,t) Gᵀ Ĥ                  dĤ = G W_head                  dH^L = LN_f backward
    per block, last first (a residual sends its output's gradient to both of its inputs):
        dR  = dHˡ⁺¹ + LN_2 backward( fc backward( GELU backward( p backward(dHˡ⁺¹ ⊙ M_p))))
        dHˡ = dR + LN_1 backward( qkv backward( attention backward( o backward(dR ⊙ M_o))))
    dW_tok = index-add of the rows of dH⁰ ⊙ M_emb by x     dW_pos[t] = Σ_b (dH⁰ ⊙ M_emb)[b, t]
A linear map's backward is grads/linear.py's for Y = X W' + b with W' = Wᵀ (in x out):
dW = (dW')ᵀ = (Xᵀ G)ᵀ, db = Σ G, dX = G W'ᵀ = G W. Dropout's backward multiplies by its mask.
With tied weights W_head is W_tok (one Parameter, `tok_emb.weight`): its gradient is the sum
of the head's and the embedding's.

Parameters come as a dict keyed by the module's names (`blocks.0.attn.qkv.weight`, ...; a block
sees its own part: `attn.qkv.weight`), biases absent without bias, and so do the gradients.

Derived step by step, with every shape: docs/derivations/transformer.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from handgrad.grads.attention import AttentionTape, attention_backward, attention_forward
from handgrad.grads.embedding import embedding_backward, position_embedding_backward
from handgrad.grads.gelu import gelu_backward, gelu_forward
from handgrad.grads.layernorm import layernorm_backward, layernorm_forward
from handgrad.grads.linear import linear_backward

Params = dict[str, torch.Tensor]
LAYERNORM_EPS = 1e-5  # nn.LayerNorm's default, which the model uses


class BlockMasks(NamedTuple):
    """A block's dropout masks, in the order the model draws them (None: no dropout)."""

    probs: torch.Tensor | None  # on P, inside attention (B x H x T x T)
    attn_out: torch.Tensor | None  # M_o (B x T x E)
    mlp_out: torch.Tensor | None  # M_p (B x T x E)


@dataclass
class BlockTape:
    """What one block's forward keeps for the backward."""

    ln_1: tuple[torch.Tensor, torch.Tensor]  # LN_1's (n, rstd)
    ln_1_out: torch.Tensor  # A (B x T x E)
    attention: AttentionTape
    attn_y: torch.Tensor  # Y (B x T x E)
    ln_2: tuple[torch.Tensor, torch.Tensor]  # LN_2's (n, rstd)
    ln_2_out: torch.Tensor  # C (B x T x E)
    fc_out: torch.Tensor  # U (B x T x 4E)
    gelu_out: torch.Tensor  # GELU(U) (B x T x 4E)
    masks: BlockMasks


@dataclass
class TransformerTape:
    """What the forward of the whole network keeps for the backward."""

    tokens: torch.Tensor  # x (B x T)
    emb_mask: torch.Tensor | None  # M_emb (B x T x E)
    blocks: list[BlockTape]
    ln_f: tuple[torch.Tensor, torch.Tensor]  # LN_f's (n, rstd)
    head_inputs: torch.Tensor  # Ĥ = LN_f(H^L) (B x T x E)


def block_forward(
    x: torch.Tensor, params: Params, n_head: int, gelu: str, masks: BlockMasks
) -> tuple[torch.Tensor, BlockTape]:
    """Hˡ⁺¹ (B x T x E) and the tape, from Hˡ (B x T x E) and the block's own parameters."""
    ln_1_out, *ln_1 = layernorm(x, params, "ln_1")  # A
    qkv = linear(ln_1_out, params, "attn.qkv")  # Z
    attn_y, attention = attention_forward(qkv, n_head, masks.probs)  # Y
    residual = x + apply_dropout(linear(attn_y, params, "attn.proj"), masks.attn_out)  # R
    ln_2_out, *ln_2 = layernorm(residual, params, "ln_2")  # C
    fc_out = linear(ln_2_out, params, "mlp.fc")  # U
    gelu_out = gelu_forward(fc_out, gelu)
    out = residual + apply_dropout(linear(gelu_out, params, "mlp.proj"), masks.mlp_out)  # Hˡ⁺¹
    tape = BlockTape(ln_1, ln_1_out, attention, attn_y, ln_2, ln_2_out, fc_out, gelu_out, masks)
    return out, tape


def block_backward(
    grad_out: torch.Tensor, tape: BlockTape, params: Params, gelu: str
) -> tuple[torch.Tensor, Params]:
    """(dHˡ, the block's gradients) from dHˡ⁺¹ (B x T x E)."""
    grads: Params = {}
    grad = apply_dropout(grad_out, tape.masks.mlp_out)  # d(GELU(U) W_pᵀ + b_p)
    grad = linear_grads(tape.gelu_out, grad, params, "mlp.proj", grads)  # dGELU(U)
    grad = gelu_backward(tape.fc_out, grad, gelu)  # dU
    grad = linear_grads(tape.ln_2_out, grad, params, "mlp.fc", grads)  # dC
    grad_residual = grad_out + layernorm_grads(grad, tape.ln_2, params, "ln_2", grads)  # dR
    grad = apply_dropout(grad_residual, tape.masks.attn_out)  # d(Y W_oᵀ + b_o)
    grad = linear_grads(tape.attn_y, grad, params, "attn.proj", grads)  # dY
    grad = attention_backward(grad, tape.attention)  # dZ
    grad = linear_grads(tape.ln_1_out, grad, params, "attn.qkv", grads)  # dA
    return grad_residual + layernorm_grads(grad, tape.ln_1, params, "ln_1", grads), grads


def transformer_backward(
    tape: TransformerTape, grad_logits: torch.Tensor, params: Params, gelu: str
) -> Params:
    """One gradient per parameter, keyed as `params` (the module's named_parameters), from
    G = dL/dlogits (B x T x V)."""
    head_weight = params.get("head.weight", params["tok_emb.weight"])  # absent: tied
    grad_head = flat(grad_logits).T @ flat(tape.head_inputs)  # (V x E)
    grads: Params = {}
    grad = layernorm_grads(grad_logits @ head_weight, tape.ln_f, params, "ln_f", grads)
    for layer in reversed(range(len(tape.blocks))):
        prefix = f"blocks.{layer}."
        grad, block_grads = block_backward(
            grad, tape.blocks[layer], block_params(params, prefix), gelu
        )
        grads.update({prefix + name: value for name, value in block_grads.items()})
    grad = apply_dropout(grad, tape.emb_mask)
    grads["pos_emb.weight"] = position_embedding_backward(grad, params["pos_emb.weight"].shape[0])
    grads["tok_emb.weight"] = embedding_backward(tape.tokens, grad, head_weight.shape[0])
    if "head.weight" in params:
        grads["head.weight"] = grad_head
    else:
        grads["tok_emb.weight"] += grad_head
    return grads


def block_params(params: Params, prefix: str) -> Params:
    """The entries of `params` under `prefix`, named without it."""
    return {name.removeprefix(prefix): p for name, p in params.items() if name.startswith(prefix)}


def linear(x: torch.Tensor, params: Params, name: str) -> torch.Tensor:
    """X Wᵀ + b with nn.Linear `name`'s W (out x in) and b (absent without bias)."""
    return F.linear(x, params[f"{name}.weight"], params.get(f"{name}.bias"))


def linear_grads(
    x: torch.Tensor, grad_out: torch.Tensor, params: Params, name: str, grads: Params
) -> torch.Tensor:
    """dX for Y = X Wᵀ + b (nn.Linear `name`), given dY; dW (and db) go into `grads`."""
    weight = params[f"{name}.weight"]
    grad_weight_t, grad_bias, grad_x = linear_backward(flat(x), weight.T, flat(grad_out))
    grads[f"{name}.weight"] = grad_weight_t.T.contiguous()  # nn.Linear's layout (out x in)
    if f"{name}.bias" in params:
        grads[f"{name}.bias"] = grad_bias
    return grad_x.view(*x.shape)


def layernorm(x: torch.Tensor, params: Params, name: str):
    """(y, n, rstd) of nn.LayerNorm `name` (its bias absent without bias)."""
    weight, bias = params[f"{name}.weight"], params.get(f"{name}.bias")
    return layernorm_forward(x, weight, bias, LAYERNORM_EPS)


def layernorm_grads(
    grad_out: torch.Tensor, saved: tuple, params: Params, name: str, grads: Params
) -> torch.Tensor:
    """dx for nn.LayerNorm `name` given dy and its forward's (n, rstd); dγ (and dβ) into `grads`."""
    grad_x, grads[f"{name}.weight"], grad_bias = layernorm_backward(
        grad_out, *saved, params[f"{name}.weight"]
    )
    if f"{name}.bias" in params:
        grads[f"{name}.bias"] = grad_bias
    return grad_x


def apply_dropout(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x ⊙ M, or x without dropout: the forward and, with the same mask, the backward."""
    return x if mask is None else x * mask


def flat(x: torch.Tensor) -> torch.Tensor:
    """(... x N) -> (rows x N)."""
    return x.reshape(-1, x.shape[-1])
