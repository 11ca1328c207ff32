"""fit: outputs, gradient accumulation, bf16 autocast, gradient checkpointing, EMA, stopping and error cases."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch.utils.data import DataLoader

import vitzoo
from tests.helpers.training import RandomClips, nano_model
from vitzoo.train import ConfigError, fit

QUIET = dict(progress=False, plot=False)


def _weights_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def _max_diff(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k] - sb[k]).abs().max().item() for k in sa)


def test_fit_writes_metrics_plots_and_checkpoints(tmp_path):
    model = nano_model()
    train = RandomClips(8, model.input_shape, 4)
    val = RandomClips(4, model.input_shape, 4, views=2, seed=1)
    result = fit(
        model,
        train,
        val_set=val,
        out_dir=tmp_path,
        epochs=2,
        batch_size=4,
        log_every=1,
        keep_last=1,
        csv=True,
        progress=False,
    )
    assert result.completed and (result.step, result.epoch) == (4, 2)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds == ["train", "train", "epoch", "val", "train", "train", "epoch", "val"]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and r["lr"] > 0 and r["samples_per_s"] > 0 for r in records if r["kind"] == "train")
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == len(records) and rows[-1]["kind"] == "val"
    assert (tmp_path / "training_curves.png").stat().st_size > 1000
    assert (tmp_path / "train_config.yaml").is_file()
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["best.safetensors", "step_00000004.safetensors", "step_00000004.state.pt"]  # keep_last=1
    assert (tmp_path / "eval" / "step_00000004" / "confusion_matrix.png").is_file()
    assert result.best_top1 == max(e.top1 for e in result.evaluations)
    best = vitzoo.load(result.best_checkpoint)  # rebuilt from the checkpoint's own metadata
    assert best.cfg.num_classes == 4


def test_training_reduces_the_loss_on_a_learnable_task(tmp_path):
    model = nano_model(num_classes=2)
    data = RandomClips(8, model.input_shape, 2)
    data.clips[data.labels == 1] += 1.0  # class 1 is brighter
    result = fit(
        model,
        data,
        val_set=data,
        out_dir=tmp_path,
        epochs=3,
        batch_size=4,
        lr=3e-3,
        warmup_epochs=0,
        weight_decay=0.0,
        eval_every=3,
        log_every=2,
        **QUIET,
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert losses[-1] < 0.75 * losses[0]
    assert result.evaluations[-1].top1 == 1.0


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    data = RandomClips(8, (3, 4, 32, 32), 4)
    common = dict(epochs=1, lr=1e-3, warmup_epochs=0, **QUIET)
    models = {}
    for batch, accum in ((4, 1), (2, 2), (2, 1)):
        models[batch, accum] = nano_model()
        fit(
            models[batch, accum],
            data,
            out_dir=tmp_path / f"{batch}x{accum}",
            batch_size=batch,
            accum_steps=accum,
            **common,
        )
    # micro-batches of 2 + 2 clips are the batch of 4, in the same order (up to float summation order)
    assert _max_diff(models[4, 1], models[2, 2]) < 1e-4
    assert _max_diff(models[4, 1], models[2, 1]) > 5e-4  # while batches of 2 without accumulation differ


def test_bf16_autocast_is_used(tmp_path):
    model = nano_model()
    dtypes = set()
    model.head.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype) if m.training else None)
    fit(model, RandomClips(4, model.input_shape, 4), out_dir=tmp_path, epochs=1, batch_size=2, amp="bf16", **QUIET)
    assert dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32


def test_gradient_checkpointing_is_enabled_and_exact(tmp_path, monkeypatch):
    import torch.utils.checkpoint

    calls = []
    original = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or original(*a, **k))
    data = RandomClips(4, (3, 4, 32, 32), 4)
    plain, ckpt = nano_model(), nano_model()
    fit(plain, data, out_dir=tmp_path / "a", epochs=1, batch_size=2, **QUIET)
    assert not calls
    fit(ckpt, data, out_dir=tmp_path / "b", epochs=1, batch_size=2, grad_checkpointing=True, **QUIET)
    assert calls  # blocks were recomputed in backward
    assert _max_diff(plain, ckpt) < 1e-6


def test_ema_weights_are_evaluated_and_saved_as_best(tmp_path):
    model = nano_model()
    data = RandomClips(8, model.input_shape, 4)
    result = fit(model, data, val_set=data, out_dir=tmp_path, epochs=1, batch_size=2, ema_decay=0.5, **QUIET)
    best = vitzoo.load(result.best_checkpoint)
    assert not _weights_equal(best, model)  # the average, not the last weights
    state = torch.load(result.last_checkpoint, weights_only=True)
    assert all(torch.equal(v, state["ema"][k]) for k, v in best.state_dict().items())


def test_layer_decay_reaches_the_optimizer(tmp_path):
    model = nano_model()
    result = fit(
        model,
        RandomClips(4, model.input_shape, 4),
        out_dir=tmp_path,
        epochs=1,
        batch_size=2,
        layer_decay=0.5,
        lr=1e-3,
        **QUIET,
    )
    groups = torch.load(result.last_checkpoint, weights_only=True)["optimizer"]["param_groups"]
    scales = sorted({g["lr_scale"] for g in groups})
    assert scales == [0.5**i for i in range(len(scales) - 1, -1, -1)] and len(scales) == 5  # ids 0..4 (2+1 blocks)


def test_mixup_trains(tmp_path):
    model = nano_model()
    result = fit(
        model,
        RandomClips(8, model.input_shape, 4),
        out_dir=tmp_path,
        epochs=1,
        batch_size=4,
        mixup_alpha=0.8,
        cutmix_alpha=1.0,
        label_smoothing=0.1,
        log_every=1,
        **QUIET,
    )
    assert result.completed and torch.isfinite(
        torch.tensor(json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["loss"])
    )


def test_image_vit_trains_and_evaluates(tmp_path):
    model = nano_model(name="vit_nano_patch8_32", num_classes=3)
    images = RandomClips(6, (3, 32, 32), 3)
    views = RandomClips(3, (3, 32, 32), 3, views=2, seed=1)
    result = fit(model, images, val_set=views, out_dir=tmp_path, epochs=1, batch_size=2, layer_decay=0.75, **QUIET)
    assert result.completed and result.evaluations[0].num_views == 2


def test_max_steps_and_callback_stop_write_a_checkpoint(tmp_path):
    model = nano_model()
    data = RandomClips(8, model.input_shape, 4)
    result = fit(model, data, out_dir=tmp_path / "a", epochs=3, batch_size=2, max_steps=3, **QUIET)
    assert not result.completed and result.step == 3 and result.last_checkpoint.name == "step_00000003.state.pt"

    def stop_at_5(state):
        state.stop = state.step == 5

    result = fit(nano_model(), data, out_dir=tmp_path / "b", epochs=3, batch_size=2, callbacks=[stop_at_5], **QUIET)
    assert result.step == 5 and result.last_checkpoint.name == "step_00000005.state.pt"


def test_callback_exception_is_reraised_after_a_checkpoint(tmp_path):
    def boom(state):
        if state.step == 2:
            raise RuntimeError("boom")

    model = nano_model()
    with pytest.raises(RuntimeError, match="boom"):
        fit(
            model,
            RandomClips(8, model.input_shape, 4),
            out_dir=tmp_path,
            epochs=1,
            batch_size=2,
            callbacks=[boom],
            **QUIET,
        )
    saved = torch.load(tmp_path / "checkpoints" / "step_00000002.state.pt", weights_only=True)
    assert saved["step"] == 2 and saved["update_in_epoch"] == 2


def test_refusals(tmp_path):
    model = nano_model()
    data = RandomClips(4, model.input_shape, 4)
    with pytest.raises(TypeError, match="datasets, not DataLoaders"):
        fit(model, DataLoader(data), out_dir=tmp_path)
    with pytest.raises(ConfigError, match="did you mean epochs"):
        fit(model, data, out_dir=tmp_path, epoch=1)
    with pytest.raises(ConfigError, match="0 batches"):
        fit(model, data, out_dir=tmp_path, batch_size=8, **QUIET)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        fit(model, data, out_dir=tmp_path / "empty", batch_size=2, resume=True, **QUIET)
    fit(model, data, out_dir=tmp_path / "run", epochs=1, batch_size=2, **QUIET)
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        fit(model, data, out_dir=tmp_path / "run", epochs=1, batch_size=2, **QUIET)
