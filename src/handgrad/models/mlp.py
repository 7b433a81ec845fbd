"""A multi-layer perceptron for regression: Linear layers with an activation after each.

    A_0 = X,   Z_l = A_{l-1} W_l^T + b_l,   A_l = f_l(Z_l),   prediction = A_L

`hidden` lists the hidden widths (any depth; [] is a single linear layer), `activation` is f_l for
the hidden layers and `output_activation` is f_L. Parameters are named `layers.<i>.weight` (shape
(out, in), nn.Linear's layout) and `layers.<i>.bias`. The hand backward is `grads.mlp`.
"""

from __future__ import annotations

from itertools import pairwise

import torch

from handgrad.grads.activations import ACTIVATIONS
from handgrad.grads.mlp import mlp_backward
from handgrad.models.handgrad_module import NOT_HYPERPARAMETERS
from handgrad.models.regression_module import RegressionModule


class MLP(RegressionModule):
    """init: `torch` keeps nn.Linear's default (uniform, scaled by fan-in); `normal` draws every
    weight from N(0, init_std^2) and sets biases to 0."""

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        hidden: list[int] = (100,),
        activation: str = "relu",
        output_activation: str = "identity",
        bias: bool = True,
        init: str = "torch",
        init_std: float = 0.01,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=NOT_HYPERPARAMETERS, logger=False)
        widths = [in_features, *hidden, out_features]
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(n_in, n_out, bias=bias) for n_in, n_out in pairwise(widths)
        )
        self.activations = [activation] * len(hidden) + [output_activation]
        if init == "normal":
            for layer in self.layers:
                torch.nn.init.normal_(layer.weight, std=init_std)
                if bias:
                    torch.nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trace(x)[-1]

    def trace(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The forward pass with what the backward needs: [A_0, ..., A_L]."""
        layer_inputs = [x]
        for layer, name in zip(self.layers, self.activations, strict=True):
            layer_inputs.append(ACTIVATIONS[name](layer(layer_inputs[-1])))
        return layer_inputs

    def hand_loss_and_grads(self, batch, state: None):
        """Loss and dL/dW_l, dL/db_l for every layer from `grads.mlp.mlp_backward`."""
        x, y = batch
        layer_inputs = self.trace(x)
        pred = layer_inputs[-1]
        weights = [layer.weight for layer in self.layers]
        layer_grads = mlp_backward(
            weights, self.activations, layer_inputs, self.criterion_grad(pred, y)
        )
        grads = {}
        for i, (layer, (grad_w, grad_b)) in enumerate(zip(self.layers, layer_grads, strict=True)):
            grads[f"layers.{i}.weight"] = grad_w
            if layer.bias is not None:
                grads[f"layers.{i}.bias"] = grad_b
        return self.criterion(pred, y), grads, None
