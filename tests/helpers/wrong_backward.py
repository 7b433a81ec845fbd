"""A deliberately broken hand backward for the gradient check to catch (put on PYTHONPATH)."""

from handgrad.models.mlp import MLP


class MLPWithoutFactorTwo(MLP):
    """The classic slip: d/dpred (pred - y)^2 taken as pred - y, so every gradient is half size."""

    def criterion_grad(self, pred, target):
        return super().criterion_grad(pred, target) / 2
