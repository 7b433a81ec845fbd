"""The hand-written SGD, Adam and AdamW: torch.optim.Optimizer subclasses in plain tensor math."""

from __future__ import annotations

import torch

from handgrad.settings.optimizer import check_optimizer_settings


class _PerParameterOptimizer(torch.optim.Optimizer):
    """The loop the hand-written optimizers share: evaluate the closure (Lightning passes one),
    then for every parameter θ with a gradient g apply weight decay λ and call
    `update(θ, g, group, state)`, which the subclass writes. Weight decay is an L2 term in the
    loss, g <- g + λ θ, or, when the class sets `decoupled_weight_decay`, a shrink of the weights
    themselves before the update, θ <- θ - lr λ θ (AdamW's)."""

    decoupled_weight_decay = False

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure's loss if given.

        The closure runs with gradients on (it calls backward); the updates run without."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    grad = param.grad
                    if group["weight_decay"] != 0:
                        if self.decoupled_weight_decay:
                            param.mul_(1 - group["lr"] * group["weight_decay"])
                        else:
                            grad = grad.add(param, alpha=group["weight_decay"])
                    self.update(param, grad, group, self.state[param])
        return loss

    def update(self, param: torch.Tensor, grad: torch.Tensor, group: dict, state: dict) -> None:
        raise NotImplementedError


class HandSGD(_PerParameterOptimizer):
    """Stochastic gradient descent with momentum, written out (the math of torch.optim.SGD).

    For each parameter θ with gradient g, using its group's lr, momentum μ, dampening τ,
    weight_decay λ and nesterov:

        g   <- g + λ θ                       (weight decay as an L2 term in the loss)
        b_1  = g                             (momentum buffer; only when μ > 0)
        b_t  = μ b_{t-1} + (1 - τ) g         (t > 1)
        d    = g + μ b_t  if nesterov  else  b_t   (d = g when μ = 0)
        θ   <- θ - lr d

    The buffer lives in `self.state[θ]["momentum_buffer"]`, so `state_dict()` resumes training.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        check_optimizer_settings(defaults)
        super().__init__(params, defaults)

    def update(self, param: torch.Tensor, grad: torch.Tensor, group: dict, state: dict) -> None:
        mu = group["momentum"]
        if mu != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.clone()
            else:
                state["momentum_buffer"].mul_(mu).add_(grad, alpha=1 - group["dampening"])
            buf = state["momentum_buffer"]
            grad = grad.add(buf, alpha=mu) if group["nesterov"] else buf
        param.add_(grad, alpha=-group["lr"])


class HandAdam(_PerParameterOptimizer):
    """Adam (and AMSGrad), written out (the math of torch.optim.Adam, not AdamW).

    For each parameter θ with gradient g, using its group's lr, betas (β1, β2), eps ε,
    weight_decay λ and amsgrad; t counts this parameter's steps from 1:

        g    <- g + λ θ                      (weight decay as an L2 term in the loss, like Adam)
        m_t   = β1 m_{t-1} + (1 - β1) g      (first moment, m_0 = 0)
        v_t   = β2 v_{t-1} + (1 - β2) g²     (second moment, v_0 = 0)
        u_t   = max(u_{t-1}, v_t)            (amsgrad only, u_0 = 0: the largest v so far,
                                             used below in place of v_t)
        m̂_t   = m_t / (1 - β1^t),   v̂_t = v_t / (1 - β2^t)      (bias corrections)
        θ    <- θ - lr m̂_t / (√v̂_t + ε)

    computed as torch does: θ <- θ - lr / (1 - β1^t) · m_t / (√v_t / √(1 - β2^t) + ε).
    The state lives in `self.state[θ]` under torch's names (step = t, exp_avg = m, exp_avg_sq = v,
    max_exp_avg_sq = u) and persists across steps, so `state_dict()` resumes training.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
        check_optimizer_settings(defaults)
        super().__init__(params, defaults)

    def update(self, param: torch.Tensor, grad: torch.Tensor, group: dict, state: dict) -> None:
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(param)
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)  # m + (1 - β1)(g - m) = β1 m + (1 - β1) g
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["amsgrad"]:
            v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = group["lr"] / (1 - beta1 ** state["step"])
        denom = (v.sqrt() / (1 - beta2 ** state["step"]) ** 0.5).add_(group["eps"])
        param.addcdiv_(m, denom, value=-step_size)


class HandAdamW(HandAdam):
    """AdamW: Adam with decoupled weight decay, written out (the math of torch.optim.AdamW).

    For each parameter θ with gradient g, using its group's lr, betas (β1, β2), eps ε,
    weight_decay λ and amsgrad; t counts this parameter's steps from 1:

        θ    <- θ - lr λ θ                   (decoupled: the weights shrink, g is left alone)
        m_t   = β1 m_{t-1} + (1 - β1) g      (first moment, m_0 = 0)
        v_t   = β2 v_{t-1} + (1 - β2) g²     (second moment, v_0 = 0)
        u_t   = max(u_{t-1}, v_t)            (amsgrad only: used below in place of v_t)
        m̂_t   = m_t / (1 - β1^t),   v̂_t = v_t / (1 - β2^t)      (bias corrections)
        θ    <- θ - lr m̂_t / (√v̂_t + ε)

    Everything after the first line is HandAdam's step (`HandAdam.update`, shared). With L2
    decay (Adam's) λ θ enters g and is divided by √v̂ with it, so a weight with large gradients
    is barely decayed; decoupled, every weight shrinks by the same factor 1 - lr λ a step
    (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"). Which parameters decay at all
    is the param groups' choice (`optimizer.decay`, optim/param_groups.py). torch's default
    weight_decay for AdamW is 0.01 (Adam's is 0); the state is HandAdam's, under torch's names.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
