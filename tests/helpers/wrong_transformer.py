"""GPTs with one deliberately wrong term in their hand backward, for the gradient check to catch
(put on PYTHONPATH; `model._target_=wrong_transformer.GPTWithWrongLayerNorm`). Their forward and
their autograd side are right; the wrong piece is swapped in only while their own hand pass runs,
so nothing else in the process sees it."""

from __future__ import annotations

from unittest import mock

import handgrad.grads.attention as attention_grads
import handgrad.grads.transformer_stack as stack_grads
from handgrad.grads.layernorm import layernorm_backward
from handgrad.models.gpt import GPT


def layernorm_backward_without_the_n_term(grad_out, normed, rstd, weight):
    """dx = rstd · (dn − mean(dn)): the n · mean(dn ⊙ n) term (rstd's own dependence on x) lost."""
    grad_x, grad_weight, grad_bias = layernorm_backward(grad_out, normed, rstd, weight)
    grad_normed = grad_out * weight
    return (
        grad_x + rstd * normed * (grad_normed * normed).mean(-1, keepdim=True),
        grad_weight,
        (grad_bias),
    )


def softmax_backward_without_the_rowsum(probs, grad_probs):
    """dS = P ⊙ dP: the softmax's rowsum(dP ⊙ P) term lost (as if each P_j depended on S_j only)."""
    return probs * grad_probs


class GPTWithWrongLayerNorm(GPT):
    def hand_loss_and_grads(self, batch, state):
        wrong = layernorm_backward_without_the_n_term
        with mock.patch.object(stack_grads, "layernorm_backward", wrong):
            return super().hand_loss_and_grads(batch, state)


class GPTWithWrongSoftmax(GPT):
    def hand_loss_and_grads(self, batch, state):
        wrong = softmax_backward_without_the_rowsum
        with mock.patch.object(attention_grads, "softmax_backward", wrong):
            return super().hand_loss_and_grads(batch, state)
