"""Linear regression Y = X w + b; its hand backward is `handgrad.grads.linear`."""

from __future__ import annotations

import torch

from handgrad.grads.linear import linear_backward
from handgrad.models.handgrad_module import NOT_HYPERPARAMETERS
from handgrad.models.regression_module import RegressionModule


class LinearRegression(RegressionModule):
    """Parameters `w` (in x out) and `b` (out); initially w ~ N(0, init_std^2) and b = 0."""

    def __init__(
        self, in_features: int = 1, out_features: int = 1, init_std: float = 0.01, **kwargs
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=NOT_HYPERPARAMETERS, logger=False)
        self.w = torch.nn.Parameter(init_std * torch.randn(in_features, out_features))
        self.b = torch.nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w + self.b

    def hand_loss_and_grads(self, batch, state: None):
        """The loss and dL/dw = X^T G, dL/db = sum_n G[n], with G = dL/dY from the MSE."""
        x, y = batch
        pred = self(x)
        grad_w, grad_b, _ = linear_backward(x, self.w, self.criterion_grad(pred, y))
        return self.criterion(pred, y), {"w": grad_w, "b": grad_b}, None

    def learned_parameters(self) -> dict[str, float | list]:
        """w and b as plain numbers (a scalar when the tensor has one element)."""
        return {name: p.detach().squeeze().tolist() for name, p in self.named_parameters()}
