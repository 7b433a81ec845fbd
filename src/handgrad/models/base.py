"""What every handgrad model shares: optimizer set-up, `backward: autograd | hand`, clipping.

With `backward: hand` the module switches Lightning to manual optimization and each training step
is: forward and hand-derived gradients under `torch.no_grad()` (subclasses implement
`hand_loss_and_grads`), gradients written into `.grad`, clipping, optimizer step. Clipping runs in
`on_before_optimizer_step`, which Lightning calls in both modes, so `clip_grad_norm` means the same
thing whichever backward trains.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch

from handgrad.errors import require
from handgrad.optim import param_groups

BACKWARDS = ("autograd", "hand")


class HandgradModule(L.LightningModule):
    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_by_param: dict[str, float] | None = None,
        backward: str = "autograd",
        clip_grad_norm: float | None = None,
    ):
        super().__init__()
        require(backward in BACKWARDS, f"model.backward={backward!r} is not one of autograd, hand")
        require(
            clip_grad_norm is None or clip_grad_norm > 0,
            f"model.clip_grad_norm={clip_grad_norm!r} must be > 0, or null for no clipping",
        )
        self.optimizer_factory = optimizer
        self.lr_by_param = dict(lr_by_param or {})
        self.backward_mode = backward
        self.clip_grad_norm = clip_grad_norm
        self.automatic_optimization = backward == "autograd"

    # --- what subclasses provide -------------------------------------------------------------
    def training_loss(self, batch) -> torch.Tensor:
        """The loss to differentiate (autograd mode)."""
        raise NotImplementedError

    def hand_loss_and_grads(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The same loss and one hand-derived gradient per named parameter (hand mode)."""
        raise NotImplementedError(f"{type(self).__name__} has no hand-derived backward pass")

    # --- training ----------------------------------------------------------------------------
    def training_step_loss(self, batch) -> torch.Tensor:
        """Run one optimization step's forward/backward in the configured mode; returns the loss.

        In autograd mode Lightning does backward and step with the returned loss; in hand mode
        this method has already stepped the optimizer.

        Under DDP (world size W > 1) the training loss is the mean of the ranks' losses,
        L = (1/W) sum_r L_r, each L_r computed on rank r's own batch, so its gradient is the mean
        of the ranks' gradients: dL/dtheta = (1/W) sum_r dL_r/dtheta. For autograd DDP's reducer
        computes that during `backward`; it never sees hand gradients, so hand mode averages them
        itself (`mean_across_ranks`: one all-reduce of all gradients flattened into one vector)
        before clipping and stepping. Every rank then clips the same gradient and takes the same
        step, and the replicas stay identical.
        """
        if self.automatic_optimization:
            return self.training_loss(batch)
        optimizer = self.optimizers()
        with torch.no_grad():
            loss, grads = self.hand_loss_and_grads(batch)
        if self.trainer.world_size > 1:
            grads = mean_across_ranks(grads)
        for name, param in self.named_parameters():
            param.grad = grads[name]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.clip_grad_norm)
            self.log("grad/norm", norm, on_step=True, on_epoch=False)

    def configure_optimizers(self):
        require(
            self.optimizer_factory is not None,
            "this model was built without an optimizer; pass one to train it",
        )
        return self.optimizer_factory(param_groups(self.named_parameters(), self.lr_by_param))


def mean_across_ranks(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The element-wise mean of `grads` over all DDP ranks, in one all-reduce of one flat vector.

    Every rank must call this with the same names and shapes (each holds a full replica).
    """
    flat = torch.cat([grad.reshape(-1) for grad in grads.values()])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    flat /= torch.distributed.get_world_size()
    chunks = flat.split([grad.numel() for grad in grads.values()])
    return {
        name: chunk.view_as(grad) for (name, grad), chunk in zip(grads.items(), chunks, strict=True)
    }
