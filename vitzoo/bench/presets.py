"""Named suites: ``full`` (the README table, base-size models), ``quick`` (nano models of every family, seconds),
``recheck`` (the full suite's slowest vitzoo rows, timed longer), ``mvit`` (MViTv1-B and MViTv2-S against
torchvision's ``MViT``), ``swin`` (Video Swin-T against torchvision's ``SwinTransformer3d``) and ``compile`` (vitzoo
eager against ``torch.compile``, micro and base ViViT).

The full suite is sized for a 2-core CPU (~20 minutes): batch 1 for video inference, 784-token clips
(8 ViViT frames) for training steps, ``torch.compile`` on two configs only. TimeSformer rows appear
when a vitzoo ``timesformer_*`` model of that size is registered. The hierarchical suites compare fp32 and bf16
inference at batch 1 and 4 and a training step, with peak memory for every case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields, replace

from vitzoo.api import list_models, model_config
from vitzoo.bench.cases import MODES
from vitzoo.bench.flops import num_tokens
from vitzoo.bench.machine import native_bf16
from vitzoo.bench.suite import Comparison, compare, with_compiled

log = logging.getLogger(__name__)

VIVIT_ENCODERS = ("joint", "fact_enc", "fact_sa", "fact_dot")
# Frames per model family such that the sweep covers 784, 1568 and 3136 patch tokens at 224 px:
# ViViT embeds 2-frame tubelets, TimeSformer single frames.
FRAME_SWEEP = {"vivit": (8, 16, 32), "timesformer": (4, 8, 16)}
TRAIN_FRAMES = {"vivit": 8, "timesformer": 4}  # 784 tokens


def video_models(size: str, geometry: str) -> list[str]:
    """The ViViT model of ``size`` for every encoder, then any registered TimeSformer of that size."""
    return [f"vivit_{enc}_{size}_{geometry}" for enc in VIVIT_ENCODERS] + list_models(f"timesformer_{size}_*")


PRECISION_LABELS = {"fp32": "fp32", "bf16": "bf16 autocast"}


def hierarchical_comparisons(
    name: str, *, family: str, frames: int | None = None, train_frames: int | None = None
) -> list[Comparison]:
    """``name`` against its references: fp32 and bf16-autocast inference at batch 1 and 4 on ``frames`` frames, and
    a training step at batch 1 on ``train_frames`` (None: the model's own clip length), grouped under ``family``."""
    suite = [
        compare(name, group=f"{family}: {label} inference", num_frames=frames, batch=batch, precision=precision)
        for precision, label in PRECISION_LABELS.items()
        for batch in (1, 4)
    ]
    return suite + [compare(name, group=f"{family}: training step", mode="train", num_frames=train_frames)]


def _family(name: str) -> str:
    return name.split("_", 1)[0]


def full_suite() -> list[Comparison]:
    """Base-size models at 224 px: image batch sweep, video token sweep, training, bf16, channels-last, compile."""
    image = "vit_base_patch16_224"
    video = video_models("base", "16x2")
    joint, fact_sa = video[0], video[2]
    suite = [compare(image, group="image: batch sweep", batch=b) for b in (1, 4, 16)]
    suite += [
        compare(name, group="video: frame sweep", num_frames=f) for name in video for f in FRAME_SWEEP[_family(name)]
    ]
    suite += [compare(joint, group="video: batch sweep", num_frames=8, batch=2)]
    suite += [compare(image, group="training step", mode="train", batch=4)]
    suite += [
        compare(name, group="training step", mode="train", num_frames=TRAIN_FRAMES[_family(name)]) for name in video
    ]
    suite += [
        compare(image, group="bf16 autocast", batch=8, precision="bf16"),
        compare(joint, group="bf16 autocast", num_frames=16, precision="bf16"),
        compare(fact_sa, group="bf16 autocast", num_frames=16, precision="bf16"),
        compare(image, group="channels-last", batch=4, channels_last=True),
        compare(image, group="torch.compile", batch=4, compile=True),
        compare(fact_sa, group="torch.compile", num_frames=8, compile=True),
    ]
    return suite


def quick_suite() -> list[Comparison]:
    """Nano models at 32 px (seconds on a laptop): every code path of the full suite, tiny shapes."""
    image = "vit_nano_patch8_32"
    video = video_models("nano", "8x2")
    suite = [compare(image, group="image: batch sweep", batch=b) for b in (1, 8)]
    suite += [compare(name, group="video: frame sweep", num_frames=f) for name in video for f in (4, 8)]
    suite += [compare(image, group="training step", mode="train", batch=8)]
    suite += [compare(name, group="training step", mode="train", num_frames=4) for name in video]
    suite += [
        compare(image, group="bf16 autocast", batch=8, precision="bf16"),
        compare(image, group="channels-last", batch=8, channels_last=True),
    ]
    suite += [compare(name, group="MViT", mode=mode) for name in list_models("mvitv*_nano_*") for mode in MODES]
    return suite + hierarchical_comparisons("video_swin_nano_4x2", family="Video Swin", frames=8, train_frames=8)


def recheck_suite() -> list[Comparison]:
    """The full-suite comparisons where vitzoo's median speed-up came out below 0.97 in the README run.

    Run longer (``--target-s 30 --max-reps 25 --no-memory``) to tell a real gap from machine noise.
    """
    image, joint = "vit_base_patch16_224", video_models("base", "16x2")[0]
    return [
        compare(joint, group="video: batch sweep", num_frames=8, batch=2),
        compare(joint, group="training step", mode="train", num_frames=TRAIN_FRAMES["vivit"]),
        compare(image, group="channels-last", batch=4, channels_last=True),
        compare(image, group="torch.compile", batch=4, compile=True),
    ]


MVIT_MODELS = ("mvitv1_base_16x4", "mvitv2_small_16x4")


def mvit_suite() -> list[Comparison]:
    """MViTv1-B and MViTv2-S at 16 x 224 against torchvision's ``MViT`` built at the same config: fp32 and bf16
    autocast inference at batch 1 and 4, a training step at batch 1; peak memory per case unless ``--no-memory``.

    About an hour on 2 CPU cores (v2-S is 128 GFLOP per clip forward).
    """
    return [c for name in MVIT_MODELS for c in hierarchical_comparisons(name, family="MViT")]


def swin_suite() -> list[Comparison]:
    """Video Swin-T at torchvision's size for its published FLOPs (16 x 224: 8 x 56 x 56 tokens; the training step
    at 8 frames) against torchvision's ``SwinTransformer3d`` built at the same config."""
    return hierarchical_comparisons("video_swin_tiny_4x2", family="Video Swin", frames=16, train_frames=8)


COMPILE_MODELS = {"micro": ("vivit_joint_micro_4x2", "vivit_fact_enc_micro_4x2"), "base": ("vivit_joint_base_16x2",)}
COMPILE_BATCH = {"micro": 8, "base": 1}
# (size, mode, precision) cells the compile suite leaves out on a CPU without native bf16 (AVX2): autocast emulates
# it at about 1 GFLOP/s, so one ViViT-B bf16 training step takes minutes and its eager / compiled pair hours
COMPILE_SKIPPED = frozenset({("base", "train", "bf16")})


def merging_schedule(name: str, *, num_frames: int | None = None) -> int | None:
    """Tokens merged per block that merge half of a joint ViViT's clip tokens by its last block (None: no
    ``token_merging`` in this checkout, or not a joint model)."""
    cfg = model_config(name, **({"num_frames": num_frames} if num_frames else {}))
    if "token_merging" not in {f.name for f in fields(cfg)} or "_joint_" not in name:
        return None
    return num_tokens(cfg) // (2 * cfg.depth)


def compile_suite(sizes: tuple[str, ...] = ("micro", "base"), *, bf16_native: bool | None = None) -> list[Comparison]:
    """What ``torch.compile`` (inductor) buys: each case eager and compiled, interleaved, fp32 and bf16 autocast,
    inference and a training step, at micro size (the demo's 256-token clips, batch 8) and at base size (ViViT-B
    joint, 8 x 224, batch 1); in the same comparisons, inference with token merging too when this checkout has it
    (the joint models, half the tokens merged by the last block). vitzoo only, no references; memory is not measured
    for compiled cases. The cells in ``COMPILE_SKIPPED`` (a bf16 training step at base size) are left out unless the
    CPU computes bf16 natively (``bf16_native``; None: ask :func:`vitzoo.bench.machine.native_bf16`)."""
    skipped = frozenset() if (native_bf16() if bf16_native is None else bf16_native) else COMPILE_SKIPPED
    for size, mode, precision in sorted(skipped):
        if size in sizes:
            log.info("compile suite: no %s %s step at %s size (this CPU emulates bf16: hours)", precision, mode, size)
    suite = []
    for size in sizes:
        names = COMPILE_MODELS[size]
        frames = 8 if size == "base" else None
        for name in names:
            r = merging_schedule(name, num_frames=frames)
            for mode in MODES:
                for precision in PRECISION_LABELS:
                    if (size, mode, precision) in skipped:
                        continue
                    group = f"torch.compile: {size}, {mode}"
                    kw = dict(group=group, impls=(), batch=COMPILE_BATCH[size], mode=mode, precision=precision)
                    comparison = with_compiled(compare(name, num_frames=frames, **kw))
                    if r and mode == "infer":  # merged and merged + compiled, interleaved with the two above
                        merged = with_compiled(
                            compare(name, num_frames=frames, overrides=(("token_merging", r),), **kw)
                        )
                        comparison = replace(comparison, cases=comparison.cases + merged.cases)
                    suite.append(comparison)
    return suite


SUITES: dict[str, Callable[[], list[Comparison]]] = {
    "full": full_suite,
    "quick": quick_suite,
    "recheck": recheck_suite,
    "mvit": mvit_suite,
    "swin": swin_suite,
    "compile": compile_suite,
    "compile-micro": lambda: compile_suite(("micro",)),
    "compile-base": lambda: compile_suite(("base",)),
}
