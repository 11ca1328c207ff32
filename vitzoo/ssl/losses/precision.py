"""Losses in float32 whatever the autocast: a decorator for ``forward``.

Under ``torch.autocast(dtype=torch.bfloat16)`` a matmul of normalised embeddings divided by a temperature of
0.1 is computed in bf16 (8 bits of mantissa: similarities within ~0.4% of each other collapse) and a
``logsumexp`` over thousands of such logits loses the positive pair. Every loss in :mod:`vitzoo.ssl.losses`
therefore upcasts its half-precision floating inputs to float32 (float64 stays float64, so ``gradcheck``
works) and runs with autocast disabled.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def _upcast(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.element_size() < 4:
        return value.float()
    return value


def full_precision(forward: F) -> F:
    """Wrap ``forward(self, *tensors, ...)``: fp16/bf16 tensor arguments become float32, autocast is off inside."""

    @functools.wraps(forward)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        device_type = tensors[0].device.type if tensors else "cpu"
        args = tuple(_upcast(a) for a in args)
        kwargs = {k: _upcast(v) for k, v in kwargs.items()}
        with torch.autocast(device_type=device_type, enabled=False):
            return forward(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
