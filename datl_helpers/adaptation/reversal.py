"""The gradient-reversal layer (Ganin & Lempitsky 2015): the identity on the way forward, the gradient
times ``-coeff`` on the way back. Notebook 04 §2 writes it by hand; a test checks the two agree."""

from __future__ import annotations

import torch
from torch import nn


class GradReverse(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``-coeff`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.coeff * grad_output, None  # no gradient for coeff


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    return GradReverse.apply(x, coeff)


class GradientReversal(nn.Module):
    """The gradient-reversal layer as a module; set ``coeff`` (lambda) as training progresses."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"
