"""MViT in the benchmarks: torchvision's MViT is the reference, built at exactly the vitzoo config."""

from __future__ import annotations

import torch

import vitzoo
from vitzoo.bench import build_subject, compare, run_suite
from vitzoo.bench.presets import SUITES
from vitzoo.bench.references import references_for


def test_torchvision_is_the_reference_of_every_mvit():
    for name in vitzoo.list_models("mvitv*"):
        assert references_for(vitzoo.model_config(name)) == ("torchvision_mvit",), name


def test_the_reference_is_the_same_network():
    """Built from the same config, torchvision's model takes vitzoo's weights and gives the same logits."""
    cases = compare("mvitv2_nano_4x2", group="test").cases
    ours, ref = (build_subject(case) for case in cases)
    converted = vitzoo.convert.from_torchvision(ref.model.eval())
    assert converted.cfg.widths == ours.config.widths and ours.params == ref.params
    with torch.no_grad():
        torch.testing.assert_close(converted(ours.inputs), ref.model(ref.inputs), rtol=1e-5, atol=1e-5)


def test_mvit_suite_covers_precisions_batches_and_training():
    comparisons = SUITES["mvit"]()
    cases = [c.cases for c in comparisons]
    assert {(c[0].model, c[0].mode, c[0].precision, c[0].batch) for c in cases} == {
        (m, "infer", p, b) for m in ("mvitv1_base_16x4", "mvitv2_small_16x4") for p in ("fp32", "bf16") for b in (1, 4)
    } | {(m, "train", "fp32", 1) for m in ("mvitv1_base_16x4", "mvitv2_small_16x4")}
    assert all([case.impl for case in c] == ["vitzoo", "torchvision_mvit"] for c in cases)


def test_tiny_mvit_suite_runs():
    comparisons = [  # every comparison also samples the machine's matmul peak: two keep the test short
        compare("mvitv2_nano_4x2", group="mvit", precision="bf16", batch=2),
        compare("mvitv1_nano_4x2", group="mvit", mode="train"),
    ]
    result = run_suite(comparisons, name="mvit-tiny", memory=False, target_s=0.0, min_reps=1, max_reps=1,
                       peak_sizes=(64,), progress=False)  # fmt: skip
    assert [r.error for r in result.rows] == [None] * 4
    assert all(r.speedup is not None for r in result.rows if r.impl == "torchvision_mvit")
