"""One benchmark case (model, implementation, batch, frames, mode, variant) and the callable it times.

A :class:`Case` is plain data (it travels as JSON to the fresh process that measures memory);
:func:`build_subject` turns it into a model, an input in the implementation's own layout and a
``step()`` that runs one inference call or one training step.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vitzoo.api import model_config
from vitzoo.bench.flops import model_flops, num_tokens
from vitzoo.bench.references import implementation, implementation_names
from vitzoo.config import BaseConfig
from vitzoo.models import family_of

MODES = ("infer", "train")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Case:
    """What to run: vitzoo model name (its config is the one every implementation builds) and how.

    ``overrides`` are extra config fields as ``(name, value)`` pairs (hashable, JSON-friendly).
    ``precision="bf16"`` runs under CPU bf16 autocast; ``compile`` wraps the model in ``torch.compile``;
    ``channels_last`` converts the (patch-embedding) convolution weights and the input to channels-last.
    """

    model: str
    impl: str = "vitzoo"
    batch: int = 1
    num_frames: int | None = None
    mode: str = "infer"
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.impl not in implementation_names():
            raise ValueError(f"unknown implementation {self.impl!r}; known: {sorted(implementation_names())}")
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; expected one of {MODES}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}; expected one of {PRECISIONS}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")

    def config(self) -> BaseConfig:
        """The validated vitzoo config every implementation of this case is built from."""
        overrides = dict(self.overrides)
        if self.num_frames is not None:
            overrides["num_frames"] = self.num_frames
        return model_config(self.model, **overrides)

    @property
    def variant(self) -> str:
        """Short label of the numeric / execution variant, e.g. ``fp32``, ``bf16+compile``."""
        parts = [self.precision] + (["compile"] if self.compile else []) + (["CL"] if self.channels_last else [])
        return "+".join(parts)

    def to_json(self) -> str:
        """Serialise (for the memory-measuring subprocess)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["overrides"] = tuple(tuple(kv) for kv in data["overrides"])
        return cls(**data)


@dataclass
class Subject:
    """A built case: ``step()`` runs one timed unit (an inference call or a training step) on ``batch`` items."""

    case: Case
    config: BaseConfig
    model: nn.Module
    inputs: torch.Tensor
    step: Callable[[], None]
    flops: int  # model FLOPs of one step (analytic, see vitzoo.bench.flops)
    tokens: int  # patch / tubelet tokens per item
    params: int


def make_input(cfg: BaseConfig, batch: int, layout: str | None, *, seed: int = 0) -> torch.Tensor:
    """A random batch in vitzoo's layout, rearranged to ``layout`` and made contiguous."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *family_of(cfg).input_shape_for(cfg), generator=gen)
    return rearrange(x, layout).contiguous() if layout else x


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build_subject(case: Case, *, seed: int = 0) -> Subject:
    """Build the model and input of ``case`` and a ``step()`` closure for it."""
    impl = implementation(case.impl)
    cfg = case.config()
    torch.manual_seed(seed)
    model = impl.build(cfg)
    x = make_input(cfg, case.batch, impl.layout, seed=seed)
    if case.channels_last:
        if impl.layout is not None:
            raise ValueError(f"channels-last is only benchmarked for the native layout, not {impl.name}'s")
        fmt = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
        model = model.to(memory_format=fmt)
        x = x.contiguous(memory_format=fmt)
    params = sum(p.numel() for p in model.parameters())
    runner = torch.compile(model) if case.compile else model
    flops = model_flops(cfg, batch=case.batch)

    if case.mode == "infer":
        model.eval()

        def step() -> None:
            with torch.inference_mode(), _autocast(case.precision):
                impl.logits(runner(x))

        step_flops = flops.total
    else:
        model.train()
        targets = torch.randint(0, cfg.num_classes, (case.batch,), generator=torch.Generator().manual_seed(seed))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with _autocast(case.precision):
                loss = F.cross_entropy(impl.logits(runner(x)), targets)
            loss.backward()
            optimizer.step()

        step_flops = flops.train_step
    return Subject(
        case=case, config=cfg, model=model, inputs=x, step=step, flops=step_flops, tokens=num_tokens(cfg), params=params
    )
