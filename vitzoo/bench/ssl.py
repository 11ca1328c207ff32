"""A SimCLR training step, vitzoo's against the same step written with lightly's modules, on the same backbone.

Both sides train the same vitzoo backbone (created with ``num_classes=0``, same seed, same weights) on the same
two views per sample with SGD; they differ in what the issue compares:

* ``vitzoo``: :class:`vitzoo.ssl.methods.SimCLR` (one backbone pass per view, as
  :meth:`~vitzoo.ssl.methods.base.SSLMethod.embed` does for a backbone without BatchNorm; the v1 head of
  :mod:`vitzoo.ssl.heads` on both views at once; :class:`~vitzoo.ssl.losses.NTXentLoss`), as ``vitzoo pretrain``
  runs it;
* ``lightly``: the step of lightly's SimCLR example: ``z_i = head(backbone(x_i))`` for each view, then
  ``lightly.loss.NTXentLoss(z_0, z_1)``, with ``lightly.models.modules.SimCLRProjectionHead`` built as the same
  v1 head (2 layers, hidden width = feature width, no BatchNorm).

Time is measured interleaved (:func:`vitzoo.bench.timing.time_interleaved`; the speed-up is the median of the
paired ratios with its confidence interval, :func:`~vitzoo.bench.timing.paired_speedup`), memory in a fresh process
(:mod:`vitzoo.bench.memory`: peak PyTorch-allocated bytes of one step). ``python -m vitzoo.bench.ssl --suite
full`` writes ``ssl_full.json`` and ``ssl_full.md``; ``--suite quick`` runs nano models in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from vitzoo.bench.machine import load_average, machine_info
from vitzoo.bench.memory import measure_peak_memory
from vitzoo.bench.timing import paired_speedup, time_interleaved

log = logging.getLogger(__name__)

IMPLS = ("vitzoo", "lightly")
FEATURES = "features"  # a model name with no backbone: the part of the step that differs (see FeatureInput)
FEATURE_WIDTH = 768  # of the features cases (ViT-B's)


class FeatureInput(nn.Flatten):
    """The backbone of the ``features`` cases: each view already is a feature vector, shaped as a ``width``-channel
    1x1 image ``(B, width, 1, 1) -> (B, width)``, so the step times what differs between the two implementations
    (head, loss and the glue around them) alone.

    These cases are timed, not measured for memory: with no backbone, lightly's head saves its inputs, which
    exist before the step, for backward, while vitzoo's SimCLR stacks the views' features into one ``(B, V, D)``
    tensor that the step allocates. Behind a real backbone both sides save features made during the step.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.num_features = width
        self.input_shape = (width, 1, 1)


@dataclass(frozen=True)
class SSLCase:
    """One SimCLR training step: backbone ``model`` (``num_frames`` overrides a video model's clip length),
    ``batch`` samples x 2 views, implementation ``impl``. ``model="features"`` has no backbone: its views are
    ``width``-dimensional feature vectors (head and loss only)."""

    model: str
    impl: str = "vitzoo"
    batch: int = 8
    num_frames: int | None = None
    temperature: float = 0.1
    proj_out_dim: int = 128
    precision: str = "fp32"
    width: int = FEATURE_WIDTH

    def __post_init__(self) -> None:
        if self.impl not in IMPLS:
            raise ValueError(f"impl={self.impl!r}; expected one of {IMPLS}")
        if self.batch < 2:
            raise ValueError(f"batch must be >= 2 (NT-Xent needs negatives), got {self.batch}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r}; expected fp32 or bf16")

    def to_json(self) -> str:
        """Serialise (for the memory-measuring subprocess)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SSLCase:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))

    def build(self) -> SSLSubject:
        """The step of this case (see :func:`build_ssl_subject`)."""
        return build_ssl_subject(self)


@dataclass
class SSLSubject:
    """A built case: ``step()`` runs one SimCLR training step on ``batch`` samples x 2 views."""

    case: SSLCase
    model: nn.Module  # backbone and head together
    step: Callable[[], None]
    loss: Callable[[], torch.Tensor]  # the step's loss without the update (for parity checks)
    tokens: int  # tokens per view the backbone sees
    params: int


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def _views(backbone: nn.Module, batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, *backbone.input_shape, generator=g)  # (B, 2, C, [T,] H, W)


def build_ssl_subject(case: SSLCase, *, seed: int = 0) -> SSLSubject:
    """Backbone, head, loss, inputs and SGD optimiser of ``case``, and its ``step()``."""
    from vitzoo.api import create
    from vitzoo.bench.flops import num_tokens
    from vitzoo.ssl.methods import SimCLR, SimCLRConfig

    torch.manual_seed(seed)
    if case.model == FEATURES:
        backbone: nn.Module = FeatureInput(case.width)
    else:
        overrides = {} if case.num_frames is None else {"num_frames": case.num_frames}
        backbone = create(case.model, num_classes=0, **overrides)
    views = _views(backbone, case.batch, seed)
    if case.impl == "vitzoo":
        cfg = SimCLRConfig(temperature=case.temperature, head="v1", proj_out_dim=case.proj_out_dim,
                           gather_distributed=False)  # fmt: skip
        model: nn.Module = SimCLR(backbone, cfg)

        def loss() -> torch.Tensor:
            return model((views, None)).loss

    else:
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        width = backbone.num_features
        head = SimCLRProjectionHead(width, width, case.proj_out_dim, num_layers=2, batch_norm=False)
        criterion = NTXentLoss(temperature=case.temperature, gather_distributed=False)
        model = nn.ModuleDict({"backbone": backbone, "head": head})
        x0, x1 = (v.contiguous() for v in views.unbind(1))  # (B, C, [T,] H, W) each

        def loss() -> torch.Tensor:
            return criterion(head(backbone(x0)), head(backbone(x1)))

    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(case.precision):
            value = loss()
        value.backward()
        optimizer.step()

    params = sum(p.numel() for p in model.parameters())
    tokens = num_tokens(backbone.cfg) if hasattr(backbone, "cfg") else 0
    return SSLSubject(case=case, model=model, step=step, loss=loss, tokens=tokens, params=params)


@dataclass
class SSLRow:
    """Time and memory of one case; on lightly rows, vitzoo's speed-up and memory ratio against it."""

    model: str
    impl: str
    batch: int
    frames: int | None
    tokens: int
    params_m: float
    median_s: float
    min_s: float
    max_s: float
    reps: int
    mem_tensor_mib: float | None = None
    speedup: float | None = None  # median over repetitions of lightly's time / vitzoo's (> 1: vitzoo faster)
    speedup_min: float | None = None
    speedup_max: float | None = None
    speedup_ci: tuple[float, float] | None = None  # confidence interval of the median (timing.median_interval)
    speedup_ci_coverage: float | None = None
    mem_ratio: float | None = None  # vitzoo's tensor peak / lightly's (< 1: vitzoo uses less)


@dataclass
class SSLResult:
    """A run of an SSL suite, serialisable to JSON."""

    name: str
    machine: dict
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    wall_s: float
    rows: list[SSLRow] = field(default_factory=list)


def compare_step(
    model: str, *, batch: int, num_frames: int | None = None, memory: bool = True, **timing: float
) -> list[SSLRow]:
    """vitzoo's and lightly's SimCLR step on ``model``: timed interleaved, then each one's memory."""
    cases = [SSLCase(model, impl=impl, batch=batch, num_frames=num_frames) for impl in IMPLS]
    subjects = [build_ssl_subject(case) for case in cases]
    timings = time_interleaved([s.step for s in subjects], **timing)
    rows = [
        SSLRow(
            model=model,
            impl=s.case.impl,
            batch=batch,
            frames=num_frames,
            tokens=s.tokens,
            params_m=s.params / 1e6,
            median_s=t.median,
            min_s=t.min,
            max_s=t.max,
            reps=len(t.times),
        )  # fmt: skip
        for s, t in zip(subjects, timings, strict=True)
    ]
    speedup = paired_speedup(timings[0], timings[1])
    rows[1].speedup, rows[1].speedup_min, rows[1].speedup_max = speedup.median, speedup.min, speedup.max
    rows[1].speedup_ci, rows[1].speedup_ci_coverage = (speedup.ci_low, speedup.ci_high), speedup.coverage
    del subjects
    if memory and model != FEATURES:  # see FeatureInput: the features rows are timed only
        for case, row in zip(cases, rows, strict=True):
            row.mem_tensor_mib = measure_peak_memory(case).tensor_peak_mib
        rows[1].mem_ratio = rows[0].mem_tensor_mib / rows[1].mem_tensor_mib
    return rows


# (model, batch, num_frames): micro and base ViT / ViViT (base video at 8 frames, 784 tokens) on a 2-core CPU, and
# the head + loss alone on 768-d features (no backbone) at a small and at a SimCLR-sized batch.
SUITES: dict[str, list[tuple[str, int, int | None]]] = {
    "quick": [("vit_nano_patch8_32", 8, None), ("vivit_joint_nano_8x2", 4, None), (FEATURES, 8, None)],
    "full": [
        (FEATURES, 8, None),
        (FEATURES, 256, None),
        ("vit_micro_patch4_32", 32, None),
        ("vivit_fact_enc_micro_4x2", 16, None),
        ("vivit_joint_micro_4x2", 16, None),
        ("vit_base_patch16_224", 8, None),
        ("vivit_fact_enc_base_16x2", 2, 8),
        ("vivit_joint_base_16x2", 2, 8),
    ],
}


def run_ssl_suite(name: str, *, memory: bool = True, progress: bool = True, **timing: float) -> SSLResult:
    """Every comparison of suite ``name``; ``timing`` goes to :func:`time_interleaved` (``target_s``, ...)."""
    from tqdm import tqdm

    start, load_start = time.perf_counter(), load_average()
    rows: list[SSLRow] = []
    for model, batch, frames in tqdm(SUITES[name], desc="ssl benchmarks", disable=not progress):
        rows += compare_step(model, batch=batch, num_frames=frames, memory=memory, **timing)
    return SSLResult(
        name=name, machine=machine_info().as_dict(), load_start=load_start, load_end=load_average(),
        wall_s=time.perf_counter() - start, rows=rows,
    )  # fmt: skip


def _cell(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _interval(row: SSLRow) -> str:
    if row.speedup_ci is None or row.speedup_ci_coverage is None:
        return "–"
    low, high = row.speedup_ci
    return f"{low:.3f}-{high:.3f} ({100 * row.speedup_ci_coverage:.0f}%)"


def markdown(result: SSLResult) -> str:
    """The comparison as a markdown table, one line per model (vitzoo against lightly)."""
    load = ", ".join(f"{v:.2f}" for v in result.load_start)
    lines = [
        f"SimCLR training step (2 views, SGD), vitzoo vs lightly's NTXentLoss + SimCLRProjectionHead on the same "
        f"backbone; load average at start {load}; {result.wall_s:.0f} s",
        "",
        "Speed-up: median over the interleaved repetitions of lightly's time / vitzoo's (> 1: vitzoo faster), with "
        "a distribution-free confidence interval of that median (its coverage in brackets) and the range of the "
        "ratios. Memory: peak of allocated tensors in one step, in a fresh process.",
        "",
        "| model | batch x views | tokens/view | reps | vitzoo s/step | lightly s/step | vitzoo speed-up "
        "| its confidence interval | min-max | vitzoo MiB | lightly MiB | vitzoo mem ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_model: dict[tuple[str, int], dict[str, SSLRow]] = {}
    for row in result.rows:
        by_model.setdefault((row.model, row.batch), {})[row.impl] = row
    for (model, batch), pair in by_model.items():
        ours, ref = pair["vitzoo"], pair["lightly"]
        name = f"{model} ({ours.frames} frames)" if ours.frames else model
        if model == FEATURES:
            name = f"no backbone: head + loss on {FEATURE_WIDTH}-d features"
        lines.append(
            f"| {name} | {batch} x 2 | {ours.tokens or '–'} | {ours.reps} | {ours.median_s:.3f} | "
            f"{ref.median_s:.3f} | {_cell(ref.speedup, '.3f')} | {_interval(ref)} | "
            f"{_cell(ref.speedup_min, '.2f')}-{_cell(ref.speedup_max, '.2f')} | "
            f"{_cell(ours.mem_tensor_mib, '.0f')} | {_cell(ref.mem_tensor_mib, '.0f')} | "
            f"{_cell(ref.mem_ratio, '.2f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m vitzoo.bench.ssl`` / ``vitzoo bench ssl`` ``[--suite quick|full] [--out DIR] [--no-memory]``."""
    parser = argparse.ArgumentParser(prog="python -m vitzoo.bench.ssl", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="full")
    parser.add_argument("--out", default="benchmarks/results", help="folder for ssl_<suite>.json and .md")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-case memory subprocesses")
    parser.add_argument("--target-s", type=float, default=20.0, help="timed seconds aimed at per comparison")
    parser.add_argument("--min-reps", type=int, default=9, help="fewest timed repetitions per case")
    parser.add_argument("--max-reps", type=int, default=40, help="most timed repetitions per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls after the first (stop past 2 s each)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = run_ssl_suite(
        args.suite, memory=not args.no_memory, target_s=args.target_s, min_reps=args.min_reps,
        max_reps=args.max_reps, warmup=args.warmup,
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"ssl_{args.suite}.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
    text = markdown(result)
    (out / f"ssl_{args.suite}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
