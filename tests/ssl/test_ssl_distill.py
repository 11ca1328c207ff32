"""SimCLR v2 distillation: the loss against independent references, the task learning from a frozen teacher, and the
``distill`` recipe task."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import vitzoo
from vitzoo.schema import ConfigError
from vitzoo.ssl.distill import Distillation, DistillOptions, load_teacher
from vitzoo.ssl.losses import DistillationLoss
from vitzoo.train import fit_task
from vitzoo.train.metrics import read_jsonl

IMAGE = "vit_nano_patch8_32"  # (3, 32, 32)


def _logits(seed: int, shape=(6, 5), dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 4.0])
def test_loss_equals_kl_div_and_a_loop(temperature):
    student, teacher = _logits(0), _logits(1)
    loss = DistillationLoss(temperature)(student, teacher)
    reference = F.kl_div(
        F.log_softmax(student / temperature, 1), F.log_softmax(teacher / temperature, 1), log_target=True,
        reduction="batchmean",
    )  # fmt: skip
    torch.testing.assert_close(loss, reference)
    total = 0.0  # the SimCLR v2 cross-entropy minus the teacher's entropy, sample by sample
    for s, t in zip(student.tolist(), teacher.tolist(), strict=True):
        zs = sum(math.exp(v / temperature) for v in s)
        zt = sum(math.exp(v / temperature) for v in t)
        pt = [math.exp(v / temperature) / zt for v in t]
        ps = [math.exp(v / temperature) / zs for v in s]
        total += sum(p * (math.log(p) - math.log(q)) for p, q in zip(pt, ps, strict=True))
    assert loss.item() == pytest.approx(total / len(student), rel=1e-10)


def test_loss_is_zero_at_the_teacher_and_its_gradient_skips_the_teacher():
    teacher = _logits(1).requires_grad_(True)
    assert DistillationLoss(2.0)(teacher.detach().clone(), teacher).item() == pytest.approx(0.0, abs=1e-12)
    student = _logits(0).requires_grad_(True)
    DistillationLoss(2.0)(student, teacher).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    shifted = _logits(0) + 3.0  # softmax is shift-invariant: a shifted student matches as well
    assert DistillationLoss()(shifted, _logits(0)).item() == pytest.approx(0.0, abs=1e-12)


def test_loss_checks_inputs_and_computes_in_float32():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DistillationLoss(0.0)
    with pytest.raises(ValueError, match="one shape"):
        DistillationLoss()(_logits(0), _logits(1, shape=(6, 4)))
    s, t = _logits(0, dtype=torch.bfloat16), _logits(1, dtype=torch.bfloat16)
    assert DistillationLoss()(s, t).dtype == torch.float32


def _images(n: int = 16, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 32, 32, generator=g), torch.zeros(n, dtype=torch.long))


def test_the_student_learns_the_teacher_which_stays_frozen(tmp_path):
    torch.manual_seed(0)
    teacher = vitzoo.create(IMAGE, num_classes=3, drop_rate=0.5)  # dropout: must stay off in the teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = vitzoo.create(IMAGE, num_classes=3)
    task = Distillation(student, teacher, temperature=2.0)
    task.train()
    assert student.training and not teacher.training
    assert not any(k.startswith("teacher.") for k in task.extra_state_dict())
    data = _images()
    options = dict(epochs=6, batch_size=8, lr=2e-3, warmup_epochs=0, weight_decay=0.0, progress=False, plot=False)
    result = fit_task(task, data, out_dir=tmp_path, log_every=1, **options)
    assert result.completed
    epochs = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "epoch"]
    assert epochs[-1]["distill"] < 0.5 * epochs[0]["distill"]  # the student moves towards the teacher
    assert "agreement" in epochs[-1] and "label_loss" not in epochs[-1]
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())


def test_label_weight_adds_the_labelled_loss():
    teacher, student = vitzoo.create(IMAGE, num_classes=3), vitzoo.create(IMAGE, num_classes=3)
    x, y = _images(4)[:]
    plain = Distillation(student, teacher)((x, y))
    mixed = Distillation(student, teacher, label_weight=0.5)((x, y))
    assert set(mixed.metrics) == {"distill", "agreement", "label_loss"}
    torch.testing.assert_close(mixed.loss, plain.loss + 0.5 * mixed.metrics["label_loss"])


def test_options_and_teacher_checks(tmp_path):
    with pytest.raises(ConfigError, match="teacher is required"):
        DistillOptions().validate()
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        DistillOptions(teacher="t", temperature=0).validate()
    path = vitzoo.save(vitzoo.create(IMAGE, num_classes=3), tmp_path / "teacher.safetensors")
    assert load_teacher(str(path), vitzoo.create(IMAGE, num_classes=3)).cfg.num_classes == 3
    with pytest.raises(ConfigError, match="the teacher has num_classes=3, the student model.num_classes=4"):
        load_teacher(str(path), vitzoo.create(IMAGE, num_classes=4))
    with pytest.raises(ConfigError, match="must see the same clips"):
        load_teacher(str(path), vitzoo.create("vit_nano_patch8_32", num_classes=3, img_size=64))


def test_distill_recipe_trains_a_student(tmp_path):
    import yaml

    from vitzoo.data import make_motion_dataset
    from vitzoo.train import load_run_config
    from vitzoo.train.recipe import train_from_config

    root = tmp_path / "motion"
    make_motion_dataset(root, num_train=8, num_val=4, num_frames=8, size=32, progress=False)
    teacher = vitzoo.save(vitzoo.create("vivit_fact_enc_nano_8x2", num_classes=4), tmp_path / "teacher.safetensors")
    recipe = {
        "model": {"name": "vivit_fact_enc_nano_8x2", "num_classes": 4},
        "data": {"root": str(root), "classes": "classes.txt", "hflip": False, "frame_interval": 1},
        "task": {"name": "distill", "options": {"teacher": str(teacher), "temperature": 2.0}},
        "train": {"epochs": 1, "batch_size": 4, "progress": False, "plot": False},
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = train_from_config(load_run_config(path))
    assert result.completed and result.monitor == "top1" and result.best_checkpoint is not None
    with pytest.raises(ConfigError, match="model.num_classes must be >= 1"):
        load_run_config(path, ["model.num_classes=0"])
