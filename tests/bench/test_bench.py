"""The benchmark package: analytic FLOPs against an independent count, timing helpers, a tiny suite run."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import vitzoo
from vitzoo.bench import Case, build_subject, compare, model_flops, run_suite
from vitzoo.bench.flops import attention_flops, matmul_flops
from vitzoo.bench.presets import SUITES
from vitzoo.bench.profiling import FUSED_ATTENTION_OPS, MATERIALISED_ATTENTION_OPS, profile_case
from vitzoo.bench.references import implementation, references_for
from vitzoo.bench.report import markdown_report, write_results
from vitzoo.bench.suite import SuiteResult
from vitzoo.bench.timing import Timing, choose_reps, median_interval, paired_speedup, time_interleaved
from vitzoo.models.mvit_flops import rel_pos_extra_flops

NANO = vitzoo.list_models("*nano*")


def _cases(name: str, **fields) -> list[Case]:
    """vitzoo and every reference for ``name``, with the references' required overrides on all of them."""
    return list(compare(name, group="test", **fields).cases)


def _counted_flops(case: Case) -> tuple[int, int]:
    subject = build_subject(case)
    counter = FlopCounterMode(display=False)
    with counter:
        subject.step()
    return subject.flops, counter.get_total_flops()


# ------------------------------------------------------------------------------------------- FLOPs
@pytest.mark.parametrize("name", NANO)
def test_analytic_flops_equal_counted_matmuls(name, reference_attention):
    """With attention as explicit matmuls, FlopCounterMode counts every product: it must equal the formula.

    Holds for vitzoo and for each reference built at the same config (which also shows the configs match).
    """
    reference_attention.enable()
    for case in _cases(name, batch=2):
        analytic, counted = _counted_flops(case)
        if case.impl == "vitzoo" and name.startswith("mvit"):  # relative positions run inside the dot products
            analytic += 2 * rel_pos_extra_flops(vitzoo.model_config(name, **dict(case.overrides)))
        assert counted == analytic, f"{case.impl}: counted {counted} != analytic {analytic}"


@pytest.mark.parametrize("name", ["vit_nano_patch8_32", "vivit_fact_sa_nano_8x2", "timesformer_nano_patch8_32"])
def test_training_flops_are_three_forwards_minus_embedding_input_grad(name, reference_attention):
    reference_attention.enable()
    analytic, counted = _counted_flops(Case(name, batch=2, mode="train"))
    assert counted == analytic


def test_vit_base_flops_match_published_count():
    """ViT-B/16 at 224 px: 17.58 GMACs per image (fvcore / timm tables), i.e. 35.2 GFLOPs."""
    flops = model_flops(vitzoo.model_config("vit_base_patch16_224"))
    assert flops.total == pytest.approx(2 * 17.58e9, rel=5e-3)


def test_attention_formula_by_hand():
    # one head of width 4 over 3 tokens: scores (3x4 @ 4x3) and weighted sum (3x3 @ 3x4), 2*36 FLOPs each
    assert attention_flops(groups=1, length=3, dim=4) == 2 * matmul_flops(3, 3, 4) == 144


def test_factorised_encoders_grow_slower_than_joint_with_frames():
    """Joint attention is quadratic in T*N; the factorised encoders' share of its cost falls as frames grow."""
    ratios = {}
    for enc in ("fact_enc", "fact_sa", "fact_dot"):
        ratios[enc] = []
        for frames in (8, 16, 32):
            joint = model_flops(vitzoo.model_config("vivit_joint_base_16x2", num_frames=frames)).total
            fact = model_flops(vitzoo.model_config(f"vivit_{enc}_base_16x2", num_frames=frames)).total
            ratios[enc].append(fact / joint)
        assert ratios[enc] == sorted(ratios[enc], reverse=True), enc
        assert ratios[enc][-1] < 1.0, enc


def test_flops_scale_with_batch():
    cfg = vitzoo.model_config("vivit_joint_nano_8x2")
    assert model_flops(cfg, batch=3).total == 3 * model_flops(cfg).total


# ------------------------------------------------------------------------------------------- cases / references
def test_case_round_trips_through_json():
    case = Case("vivit_fact_sa_nano_8x2", impl="vit_pytorch", num_frames=8, overrides=(("qkv_bias", False),))
    assert Case.from_json(case.to_json()) == case


@pytest.mark.parametrize("bad", [dict(impl="nope"), dict(mode="eval"), dict(precision="fp16"), dict(batch=0)])
def test_case_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        Case("vit_nano_patch8_32", **bad)


def test_references_refuse_configs_they_cannot_represent():
    with pytest.raises(ValueError, match="qkv_bias"):
        build_subject(Case("vivit_fact_sa_nano_8x2", impl="vit_pytorch"))  # vit-pytorch has no qkv bias
    with pytest.raises(ValueError, match="encoder"):
        build_subject(Case("vivit_fact_sa_nano_8x2", impl="hf_vivit"))


def test_compare_applies_reference_overrides_to_every_case():
    cases = _cases("vivit_fact_enc_nano_8x2")
    assert [c.impl for c in cases] == ["vitzoo", "vit_pytorch"]
    assert all(c.config().qkv_bias is False for c in cases)


def test_references_are_found_through_the_model_family():
    expected = {"vit": ("timm",), "vivit_joint": ("hf_vivit",), "vivit_fact_enc": ("vit_pytorch",),
                "vivit_fact_sa": ("vit_pytorch",), "vivit_fact_dot": (), "timesformer": ("hf_timesformer",),
                "frame_avg": (), "vtn": ("vit_pytorch",), "mvit": ("torchvision_mvit",),
                "video_swin": ("torchvision_swin3d",), "swin": ()}  # fmt: skip
    for name in vitzoo.list_models("*nano*"):
        prefix = next(p for p in sorted(expected, key=len, reverse=True) if name.startswith(p))
        refs = references_for(vitzoo.model_config(name))
        assert refs == expected[prefix], name
        assert all(implementation(r).name == r for r in refs)


# ------------------------------------------------------------------------------------------- timing
def test_choose_reps_clamps():
    assert choose_reps(1.0, target_s=10, min_reps=3, max_reps=8) == 8
    assert choose_reps(4.0, target_s=10, min_reps=3, max_reps=8) == 3
    assert choose_reps(2.0, target_s=10, min_reps=3, max_reps=8) == 5
    with pytest.raises(ValueError):
        choose_reps(1.0, target_s=1, min_reps=5, max_reps=2)


def test_time_interleaved_alternates_order_and_skips_warmup():
    log = []
    fns = [lambda: log.append("a"), lambda: log.append("b")]
    timings = time_interleaved(fns, warmup=1, min_reps=3, max_reps=3, target_s=0)
    assert log == ["a", "b", "a", "b"] + ["a", "b", "b", "a", "a", "b"]  # first calls, warm calls, 3 reps
    assert all(len(t.times) == 3 for t in timings)


def test_timed_calls_run_with_the_garbage_collector_paused():
    import gc

    states = []
    time_interleaved([lambda: states.append(gc.isenabled())], warmup=0, min_reps=2, max_reps=2, target_s=0)
    assert gc.isenabled() and states == [False] * 3
    gc.disable()  # a caller that paused it keeps it paused
    try:
        time_interleaved([lambda: None], warmup=0, min_reps=1, max_reps=1, target_s=0)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("n", "ranks", "coverage"),
    [(5, (1, 5), 1 - 2 / 32), (6, (1, 6), 1 - 2 / 64), (9, (2, 8), 1 - 2 * 10 / 512), (20, (6, 15), None)],
)
def test_median_interval_uses_the_binomial_order_statistics(n, ranks, coverage):
    values = [10.0 * i for i in range(n, 0, -1)]  # unsorted on purpose
    low, high, covered = median_interval(values)
    assert (low, high) == (10.0 * ranks[0], 10.0 * ranks[1])
    if coverage is not None:
        assert covered == pytest.approx(coverage)
    assert covered >= 0.95 or ranks == (1, n)


def test_median_interval_covers_the_median_of_a_skewed_distribution():
    """Monte Carlo: exponential samples (median ln 2); the interval holds it at least as often as it claims."""
    g = torch.Generator().manual_seed(0)
    trials, n = 2000, 15
    samples = torch.empty(trials, n).exponential_(generator=g).tolist()
    hits, claimed = 0, 0.0
    for values in samples:
        low, high, claimed = median_interval(values)
        hits += low <= math.log(2) <= high
    assert claimed >= 0.95 and hits / trials >= claimed - 0.015
    too_narrow = sum(sorted(v)[6] <= math.log(2) <= sorted(v)[8] for v in samples) / trials  # control: 3 middle values
    assert too_narrow < 0.9


def test_paired_speedup_pairs_repetitions():
    ours, ref = Timing(0.0, (1.0, 2.0, 4.0)), Timing(0.0, (2.0, 2.0, 2.0))
    s = paired_speedup(ours, ref)
    assert (s.median, s.min, s.max) == (1.0, 0.5, 2.0)
    assert (s.ci_low, s.ci_high) == (0.5, 2.0) and s.coverage == pytest.approx(0.75)
    with pytest.raises(ValueError, match="unpaired"):
        paired_speedup(ours, Timing(0.0, (1.0,)))


def test_timing_statistics():
    t = Timing(first_s=5.0, times=(1.0, 3.0, 2.0))
    assert (t.median, t.min, t.max) == (2.0, 1.0, 3.0)
    assert t.spread == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------- profile
@pytest.mark.parametrize("name", NANO)
def test_vitzoo_attention_runs_the_fused_cpu_kernel(name):
    """No vitzoo model materialises an attention matrix: SDPA dispatches to the CPU flash kernel only."""
    prof = profile_case(Case(name, num_frames=None))
    assert set(prof.attention_kernels) & FUSED_ATTENTION_OPS
    assert not set(prof.attention_kernels) & MATERIALISED_ATTENTION_OPS
    relative = any(n.rsplit(".", 1)[-1].startswith("rel_pos") for n, _ in vitzoo.create(name).named_parameters())
    if not relative:  # decomposed relative positions (MViTv2) contract queries with per-row tables: an einsum (bmm)
        assert "aten::bmm" not in prof.calls


# ------------------------------------------------------------------------------------------- suite
@pytest.mark.slow
def test_tiny_suite_runs_and_reports(tmp_path):
    comparisons = [
        compare("vit_nano_patch8_32", group="image", batch=2),
        compare("vivit_joint_nano_8x2", group="video", mode="train"),
        compare("vivit_fact_sa_nano_8x2", group="video", precision="bf16"),
    ]
    result = run_suite(
        comparisons, name="tiny", memory=False, target_s=0.0, min_reps=2, max_reps=2, peak_sizes=(64,), progress=False
    )
    assert [r.error for r in result.rows] == [None] * 6
    assert [r.impl for r in result.rows] == ["vitzoo", "timm", "vitzoo", "hf_vivit", "vitzoo", "vit_pytorch"]
    for row in result.rows:
        assert row.reps == 2 and row.median_s > 0 and row.gflop > 0
        assert math.isclose(row.items_per_s, row.batch / row.median_s)
        assert (row.speedup is None) == (row.impl == "vitzoo")
        if row.speedup is not None:
            assert row.speedup_min <= row.speedup <= row.speedup_max
    paths = write_results(result, tmp_path)
    assert paths["png"].stat().st_size > 0
    report = markdown_report(result)
    assert "HF VivitModel (sdpa)" in report and "torch.mm" in report
    assert len(result.peak_samples) == len(comparisons)
    assert result.peak("fp32") >= max(result.peak_samples)
    assert SuiteResult.from_json(result.to_json()) == result  # what --report-only rebuilds the reports from


def test_suite_reports_a_partial_result_after_every_comparison(tmp_path):
    comparisons = [compare("vit_nano_patch8_32", group=g, batch=1, impls=()) for g in ("first", "second")]
    snapshots = []
    result = run_suite(
        comparisons, name="tiny", memory=False, target_s=0.0, min_reps=1, max_reps=1, warmup=0, peak_sizes=(64,),
        progress=False, on_comparison=snapshots.append,
    )  # fmt: skip
    assert [[r.group for r in s.rows] for s in snapshots] == [["first"], ["first", "second"]]
    assert [s.complete for s in snapshots] == [False, False] and result.complete
    assert snapshots[0].peak_gflops_end == {} and result.peak_gflops_end
    assert "PARTIAL" in markdown_report(snapshots[0]) and "PARTIAL" not in markdown_report(result)
    assert SuiteResult.from_json(snapshots[0].to_json()) == snapshots[0]


def test_peak_allocated_bytes_follows_allocations_and_frees():
    from torch.profiler import ProfilerActivity, profile

    from vitzoo.bench.memory import peak_allocated_bytes

    mib = 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        a = torch.empty(mib, dtype=torch.uint8)
        b = torch.empty(2 * mib, dtype=torch.uint8)
        del a
        c = torch.empty(mib // 2, dtype=torch.uint8)  # fits under the earlier peak of 3 MiB
        del b, c
    assert peak_allocated_bytes(prof) == 3 * mib


@pytest.mark.slow
def test_step_memory_grows_with_batch():
    from vitzoo.bench.memory import measure_peak_memory

    small = measure_peak_memory(Case("vit_nano_patch8_32", batch=1, mode="train"))
    large = measure_peak_memory(Case("vit_nano_patch8_32", batch=256, mode="train"))
    # 256 images x 17 tokens x 64 dims x 4 bytes = 1.1 MiB per saved activation, dozens of them per block
    assert large.tensor_peak_mib > small.tensor_peak_mib + 10
    assert large.rss_step_mib > 10
    assert large.baseline_mib > large.params_mib


def test_threads_are_recorded():
    from vitzoo.bench.machine import machine_info

    info = machine_info()
    assert info.torch_threads == torch.get_num_threads()
    assert info.cpu


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_suite_names_registered_models_and_has_references(suite):
    comparisons = SUITES[suite]()
    assert comparisons
    for comparison in comparisons:
        ours, *refs = comparison.cases
        assert ours.impl == "vitzoo" and ours.model in vitzoo.list_models()
        assert all(case.impl != "vitzoo" or case.compile or case.overrides for case in refs)  # references or twins


def test_compiled_twins_are_timed_against_their_eager_case(tmp_path, monkeypatch):
    """``vitzoo bench --compile``: a compiled twin of the vitzoo case joins each comparison; its row carries the
    paired eager / compiled ratio, and the references' speed-ups stay against the eager vitzoo case."""
    import vitzoo.bench.cases
    from vitzoo.bench.suite import with_compiled

    monkeypatch.setattr(vitzoo.bench.cases.torch, "compile", lambda model: model)  # the wiring, not inductor
    comparison = with_compiled(compare("vit_nano_patch8_32", group="image", batch=2))
    assert [(c.impl, c.compile) for c in comparison.cases] == [("vitzoo", False), ("timm", False), ("vitzoo", True)]
    assert with_compiled(comparison) == comparison
    result = run_suite(
        [comparison], memory=False, target_s=0.0, min_reps=2, max_reps=2, peak_sizes=(64,), progress=False
    )
    ours, timm, twin = result.rows
    assert ours.compile_speedup is None and timm.compile_speedup is None and twin.speedup is None
    assert timm.speedup is not None and twin.variant == "fp32+compile"
    assert twin.compile_speedup_min <= twin.compile_speedup <= twin.compile_speedup_max
    assert "compile speed-up" in markdown_report(result)
    assert SuiteResult.from_json(result.to_json()) == result


def test_matmul_peak_stays_within_its_budget(monkeypatch):
    """A slow product (bf16 without native support runs at ~1 GFLOP/s) gets fewer repeats and ends the size sweep."""
    from vitzoo.bench import machine

    calls = []

    def slow_mm(a, b, *, out):  # each product "takes" 3 s of the clock
        calls.append(a.shape[0])
        clock[0] += 3.0

    clock = [0.0]
    monkeypatch.setattr(machine.torch, "mm", slow_mm)
    monkeypatch.setattr(machine.time, "perf_counter", lambda: clock[0])
    peaks = machine.matmul_peak(sizes=(64, 32), repeats=5, budget_s=10.0)
    assert list(peaks) == [32]  # smallest first; 64 would take 8 x 3 s > budget / 4, so it is skipped
    assert calls == [32] * 4  # the warm-up and int(10 / 3) = 3 repeats, not 5
    assert peaks[32] == pytest.approx(2 * 32**3 / 3.0 / 1e9)
    calls.clear()
    assert list(machine.matmul_peak(sizes=(32, 64), repeats=2, budget_s=200.0)) == [32, 64]  # 24 s < 50 s: both


@pytest.mark.parametrize("bf16_native", [False, True])
def test_compile_suite_leaves_out_the_base_bf16_training_step_only_where_bf16_is_emulated(bf16_native):
    from vitzoo.bench.presets import compile_suite

    def cells(size):
        suite = compile_suite((size,), bf16_native=bf16_native)
        return {(c.mode, c.precision, c.compile) for comp in suite for c in comp.cases}

    every = {(mode, precision, compiled) for mode in ("infer", "train") for precision in ("fp32", "bf16")
             for compiled in (False, True)}  # fmt: skip
    assert cells("micro") == every
    emulated_base = every - {("train", "bf16", False), ("train", "bf16", True)}
    assert cells("base") == (every if bf16_native else emulated_base)


def test_native_bf16_reads_the_cpu_flags():
    from vitzoo.bench.machine import native_bf16

    assert not native_bf16({"avx2", "avx512f", "fma"})
    assert native_bf16({"avx512f", "avx512_bf16"}) and native_bf16({"amx_bf16", "amx_tile"})
