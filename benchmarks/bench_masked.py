"""Masked-autoencoder pre-training step: token dropping at mask 0.9 vs the encoder on all tokens vs transformers.

One VideoMAE ViT-B (16 frames of 224 px, 2-frame tubelets: 1568 tokens; decoder 384 wide, 4 blocks) is built as
transformers' ``VideoMAEForPreTraining`` and converted with ``vitzoo.convert.from_hf`` (same weights). Three steps,
each forward + backward + AdamW step on one batch, timed interleaved (round-robin, after one warm-up each):

- ``vitzoo mask 0.9``: ``mae.loss(clips, mask)``: the encoder on the 160 visible tokens of a tube mask, the decoder;
- ``vitzoo all tokens``: ``mae.encoder.forward_features(clips)`` on all 1568 tokens with a mean-square loss, no
  decoder (the encoder's cost without token dropping: a fine-tuning-sized step);
- ``transformers mask 0.9``: ``VideoMAEForPreTraining(pixel_values, bool_masked_pos).loss``, the same mask.

Memory: each step once more in a fresh process (``vitzoo.bench.memory``): the peak of the bytes PyTorch's CPU
allocator holds during the step (its profiler's memory events; AdamW's state is allocated before the step) and the
growth of the resident set (``VmHWM - VmRSS``).

Run: ``flock /tmp/vz-bench.lock python benchmarks/bench_masked.py [--size base] [--batch 1] [--repeats 3]``
(about 5 minutes at base size on 2 cores); ``--size tiny`` checks the script in seconds. Writes
``benchmarks/results/masked.md`` and ``.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("bench_masked")
SIZES = {
    "base": dict(),  # transformers' VideoMAEConfig defaults: ViT-B, 16x224, tubelet 2, decoder 384 x 4
    "tiny": dict(image_size=64, num_frames=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128, decoder_hidden_size=32, decoder_num_attention_heads=1,
                 decoder_num_hidden_layers=1, decoder_intermediate_size=64),
}  # fmt: skip
VARIANTS = ("vitzoo mask 0.9", "vitzoo all tokens", "transformers mask 0.9")


@dataclass(frozen=True)
class MaskedCase:
    """One variant's step at one size (JSON round trip: measured in a fresh process by vitzoo.bench.memory)."""

    variant: str
    size: str = "base"
    batch: int = 1
    ratio: float = 0.9

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MaskedCase:
        return cls(**json.loads(text))

    def build(self) -> Step:
        return build_step(self)


@dataclass
class Step:
    """A training step to run (``step()``) and the module it trains (``model``)."""

    model: torch.nn.Module
    step: object


def _optimizer(params) -> torch.optim.Optimizer:
    """AdamW with its state allocated (one step on zero gradients), so a measured step allocates no state."""
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1.5e-4, weight_decay=0.05)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def build_step(case: MaskedCase) -> Step:
    """The HF model, its vitzoo conversion, a clip, a tube mask; the step of ``case.variant``."""
    import transformers

    import vitzoo
    from vitzoo.data.masking import TubeMask, draw_masks

    torch.manual_seed(0)
    hf = transformers.VideoMAEForPreTraining(transformers.VideoMAEConfig(**SIZES[case.size])).train()
    c = hf.config
    grid = (c.num_frames // c.tubelet_size, c.image_size // c.patch_size, c.image_size // c.patch_size)
    pixel_values = torch.randn(case.batch, c.num_frames, 3, c.image_size, c.image_size)  # HF's (B, T, C, H, W)
    clips = pixel_values.permute(0, 2, 1, 3, 4).contiguous()  # vitzoo's (B, C, T, H, W)
    mask = draw_masks(TubeMask(grid, case.ratio), range(case.batch), seed=0)
    if case.variant == "transformers mask 0.9":
        opt = _optimizer(hf.parameters())

        def step() -> None:
            hf(pixel_values=pixel_values, bool_masked_pos=mask).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return Step(hf, step)
    mae = vitzoo.convert.from_hf(hf).train()
    hf = None  # free transformers' copy: only the converted model is measured
    if case.variant == "vitzoo mask 0.9":
        opt = _optimizer(mae.parameters())

        def step() -> None:
            mae.loss(clips, mask).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return Step(mae, step)
    encoder = mae.encoder
    opt = _optimizer(encoder.parameters())

    def step() -> None:
        encoder.forward_features(clips).square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return Step(encoder, step)


def time_interleaved(steps: dict[str, Step], repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each variant: one warm-up each, then ``repeats`` rounds, variants in turn."""
    for s in steps.values():
        s.step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, s in steps.items():
            start = time.perf_counter()
            s.step()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="timings only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "masked")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("vitzoo").setLevel(logging.WARNING)
    from vitzoo.bench.memory import measure_peak_memory

    cases = {v: MaskedCase(v, args.size, args.batch) for v in VARIANTS}
    logger.info("building %s (%s, batch %d)", ", ".join(VARIANTS), args.size, args.batch)
    steps = {v: case.build() for v, case in cases.items()}
    times = time_interleaved(steps, args.repeats)
    del steps
    memory = {} if args.no_memory else {v: measure_peak_memory(case) for v, case in cases.items()}
    median = {v: statistics.median(t) for v, t in times.items()}
    ref = median["vitzoo mask 0.9"]
    rows = []
    for v in VARIANTS:
        m = memory.get(v)
        rows.append(dict(
            variant=v, median_s=median[v], times_s=times[v], speed_vs_masked=median[v] / ref,
            tensor_peak_mib=m.tensor_peak_mib if m else None, rss_step_mib=m.rss_step_mib if m else None,
        ))  # fmt: skip
    lines = [
        f"Pre-training step (forward + backward + AdamW), VideoMAE {args.size}, batch {args.batch}, tube mask "
        f"{cases[VARIANTS[0]].ratio}; torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads.",
        "",
        "| step | median s/step (runs) | time / vitzoo mask 0.9 | tensor peak MiB | RSS growth MiB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        runs = ", ".join(f"{t:.2f}" for t in r["times_s"])
        mem = (f"{r['tensor_peak_mib']:.0f} | {r['rss_step_mib']:.0f}" if r["tensor_peak_mib"] is not None
               else "- | -")  # fmt: skip
        lines.append(f"| {r['variant']} | {r['median_s']:.2f} ({runs}) | {r['speed_vs_masked']:.2f}x | {mem} |")
    table = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table)
    args.out.with_suffix(".json").write_text(json.dumps(dict(size=args.size, batch=args.batch, rows=rows), indent=2))
    logger.info("\n%s", table)


if __name__ == "__main__":
    main()
