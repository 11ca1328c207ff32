"""The SimCLR step benchmark: vitzoo's and lightly's steps compute the same thing; the comparison runs and reports."""

from __future__ import annotations

import json

import pytest
import torch

from vitzoo.bench.ssl import IMPLS, SSLCase, SSLResult, build_ssl_subject, compare_step, markdown

MODEL = "vit_nano_patch8_32"


def _pair(batch: int = 4):
    ours, theirs = (build_ssl_subject(SSLCase(MODEL, impl=impl, batch=batch)) for impl in ("vitzoo", "lightly"))
    head = theirs.model["head"].layers  # Linear, ReLU, Linear
    with torch.no_grad():  # give both the same head
        for mine, source in ((ours.model.projector[0][0], head[0]), (ours.model.projector[1][0], head[2])):
            mine.weight.copy_(source.weight)
            mine.bias.copy_(source.bias)
    return ours, theirs


def test_both_steps_compute_the_same_loss_and_update():
    ours, theirs = _pair()
    backbone, reference = ours.model.model, theirs.model["backbone"]
    assert all(torch.equal(a, b) for a, b in zip(backbone.parameters(), reference.parameters(), strict=True))
    torch.testing.assert_close(ours.loss(), theirs.loss(), rtol=1e-5, atol=1e-6)
    ours.step()
    theirs.step()
    for a, b in zip(backbone.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    moved = build_ssl_subject(SSLCase(MODEL, batch=4)).model.model  # negative control: the step changed weights
    assert any(not torch.equal(a, b) for a, b in zip(moved.parameters(), backbone.parameters(), strict=True))


def test_features_case_times_head_and_loss_alone():
    from vitzoo.bench.ssl import FEATURES

    ours, theirs = (build_ssl_subject(SSLCase(FEATURES, impl=impl, batch=4, width=16)) for impl in IMPLS)
    assert ours.tokens == theirs.tokens == 0 and ours.params == theirs.params == 16 * 16 + 16 + 16 * 128 + 128
    head = theirs.model["head"].layers
    with torch.no_grad():
        for mine, source in ((ours.model.projector[0][0], head[0]), (ours.model.projector[1][0], head[2])):
            mine.weight.copy_(source.weight)
            mine.bias.copy_(source.bias)
    torch.testing.assert_close(ours.loss(), theirs.loss(), rtol=1e-5, atol=1e-6)
    rows = compare_step(FEATURES, batch=4, memory=False, target_s=0.0, min_reps=1, max_reps=1, warmup=0)
    text = markdown(SSLResult("t", {}, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0, rows))
    assert "| no backbone: head + loss on 768-d features | 4 x 2 | – |" in text


def test_case_checks_and_round_trips():
    case = SSLCase("vivit_joint_nano_8x2", impl="lightly", batch=4, num_frames=4)
    assert SSLCase.from_json(case.to_json()) == case
    with pytest.raises(ValueError, match="impl="):
        SSLCase(MODEL, impl="solo")
    with pytest.raises(ValueError, match="negatives"):
        SSLCase(MODEL, batch=1)


def test_comparison_runs_and_reports():
    rows = compare_step(MODEL, batch=4, memory=False, target_s=0.01, min_reps=1, max_reps=2, warmup=0)
    assert [r.impl for r in rows] == ["vitzoo", "lightly"] and rows[1].speedup > 0 and rows[0].speedup is None
    low, high = rows[1].speedup_ci
    assert rows[1].speedup_min <= low <= rows[1].speedup <= high <= rows[1].speedup_max
    text = markdown(SSLResult("t", {}, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0, rows))
    assert f"| {MODEL} | 4 x 2 | 16 | {rows[0].reps} |" in text
    assert f"| {low:.3f}-{high:.3f} (" in text


def test_vitzoo_bench_ssl_writes_the_table(tmp_path, capsys):
    from vitzoo.cli.main import main

    args = ["--suite", "quick", "--no-memory", "--target-s", "0", "--min-reps", "1", "--max-reps", "1"]
    assert main(["bench", "ssl", *args, "--out", str(tmp_path)]) == 0
    assert "| vivit_joint_nano_8x2 | 4 x 2 |" in capsys.readouterr().out
    rows = json.loads((tmp_path / "ssl_quick.json").read_text())["rows"]
    assert [(r["model"], r["impl"]) for r in rows][:2] == [
        ("vit_nano_patch8_32", "vitzoo"),
        ("vit_nano_patch8_32", "lightly"),
    ]
    assert (tmp_path / "ssl_quick.md").is_file()


@pytest.mark.slow
def test_step_memory_is_measured_in_a_fresh_process():
    from vitzoo.bench.memory import measure_peak_memory

    small, large = (measure_peak_memory(SSLCase(MODEL, batch=b)).tensor_peak_mib for b in (4, 16))
    assert 0 < small < large
