"""Layer ids for layer-wise lr decay on every encoder, weight-decay exclusions, and the warmup + cosine schedule."""

from __future__ import annotations

import re

import pytest
import torch

import vitzoo
from vitzoo.train.config import TrainConfig
from vitzoo.train.optim import build_optimizer, build_scheduler, layer_ids, param_groups

NANO_MODELS = vitzoo.list_models("*nano*")


def _expected_block_id(name: str, model) -> int | None:
    """Independent statement of the numbering: stacks in module order, block i of a stack -> offset + i + 1."""
    enc = getattr(model, "encoder", None)
    if hasattr(model, "stages"):  # hierarchical (MViT): the stages' block stacks in order
        stacks = [(f"stages.{s}.blocks.", len(stage.blocks)) for s, stage in enumerate(model.stages)]
    elif hasattr(model, "layers"):  # hierarchical (Swin): the same, and patch merging starts stages 1..
        stacks = [(f"layers.{s}.blocks.", len(stage.blocks)) for s, stage in enumerate(model.layers)]
        merging = re.match(r"layers\.(\d+)\.downsample\.", name)
        if merging:  # just below the stage's first block
            return sum(len(stage.blocks) for stage in model.layers[: int(merging[1])])
    elif enc is None:  # ViT
        stacks = [("blocks.", len(model.blocks))]
    elif hasattr(enc, "spatial"):  # factorised encoder / VTN (spatial + temporal), frame averaging (spatial)
        stacks = [("encoder.spatial.blocks.", len(enc.spatial.blocks))]
        if hasattr(enc, "temporal"):
            stacks.append(("encoder.temporal.blocks.", len(enc.temporal.blocks)))
    elif hasattr(enc, "transformer"):  # joint
        stacks = [("encoder.transformer.blocks.", len(enc.transformer.blocks))]
    else:  # fact_sa, fact_dot, divided
        stacks = [("encoder.blocks.", len(enc.blocks))]
    offset = 0
    for prefix, depth in stacks:
        match = re.match(re.escape(prefix) + r"(\d+)\.", name)
        if match:
            return offset + int(match[1]) + 1
        offset += depth
    return None


@pytest.mark.parametrize("name", NANO_MODELS)
def test_layer_ids_follow_the_documented_rule(name):
    model = vitzoo.create(name)
    ids = layer_ids(model)
    assert set(ids) == {n for n, _ in model.named_parameters()}
    num_blocks = sum(1 for n in ids if re.search(r"blocks\.\d+\.norm1\.weight$", n))
    last = num_blocks + 1
    for pname, lid in ids.items():
        expected = _expected_block_id(pname, model)
        if expected is not None:
            assert lid == expected, pname
        elif pname.startswith("patch_embed."):
            assert lid == 0, pname
        elif pname.startswith("encoder.temporal.") and pname.rsplit(".", 1)[-1] in ("pos_embed", "cls_token"):
            assert lid == len(model.encoder.spatial.blocks), pname  # just below the first temporal block
        elif any(k in pname for k in ("pos_embed", "cls_token", "time_embed")):
            assert lid == 0, pname
        else:
            assert lid == last, pname
    assert ids["head.weight"] == last
    assert set(ids.values()) == set(range(last + 1))  # every layer id is used


def test_factorised_encoder_temporal_blocks_come_after_spatial():
    model = vitzoo.create("vivit_fact_enc_nano_8x2", temporal_depth=2)
    ids = layer_ids(model)
    spatial = [ids[f"encoder.spatial.blocks.{i}.attn.qkv.weight"] for i in range(2)]
    temporal = [ids[f"encoder.temporal.blocks.{i}.attn.qkv.weight"] for i in range(2)]
    assert spatial == [1, 2] and temporal == [3, 4]
    assert ids["encoder.temporal.pos_embed"] == 2 and ids["encoder.spatial.pos_embed"] == 0
    assert ids["encoder.temporal.norm.weight"] == ids["head.bias"] == 5


@pytest.mark.parametrize("name", NANO_MODELS)
def test_weight_decay_exclusions(name):
    model = vitzoo.create(name)
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.75)
    seen = set()
    for group in groups:
        for pname, p in zip(group["param_names"], group["params"], strict=True):
            seen.add(pname)
            tables = ("pos_embed", "cls_token", "time_embed", "rel_pos", "relative_position_bias_table")
            excluded = p.ndim <= 1 or any(k in pname for k in tables)
            assert group["weight_decay"] == (0.0 if excluded else 0.05), pname
    assert seen == {n for n, _ in model.named_parameters()}
    names = {n for g in groups if g["weight_decay"] == 0 for n in g["param_names"]}
    assert any(k in n for n in names for k in ("pos_embed", "rel_pos", "relative_position"))
    assert any("norm" in n for n in names)


def test_layer_decay_scales_and_frozen_params():
    model = vitzoo.create("vivit_joint_nano_8x2")
    model.patch_embed.proj.weight.requires_grad_(False)
    groups = param_groups(model, weight_decay=0.1, layer_decay=0.5)
    last = max(g["layer_id"] for g in groups)
    for g in groups:
        assert g["lr_scale"] == pytest.approx(0.5 ** (last - g["layer_id"]))
    names = [n for g in groups for n in g["param_names"]]
    assert "patch_embed.proj.weight" not in names and "patch_embed.proj.bias" in names
    assert all(g["lr_scale"] == 1.0 for g in param_groups(model, weight_decay=0.1))  # no layer decay


def test_scheduler_warmup_cosine_and_lr_scale():
    model = vitzoo.create("vivit_joint_nano_8x2")
    cfg = TrainConfig(lr=1e-3, min_lr=1e-5, warmup_lr=1e-6, warmup_epochs=1, epochs=5, layer_decay=0.5)
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.AdamW)
    sched, total = build_scheduler(opt, cfg, updates_per_epoch=10)
    assert total == 50
    top = max(opt.param_groups, key=lambda g: g["lr_scale"])
    low = min(opt.param_groups, key=lambda g: g["lr_scale"])
    lrs = []
    for step in range(total + 1):
        sched.step_update(step)
        lrs.append(top["lr"])
        assert low["lr"] == pytest.approx(top["lr"] * low["lr_scale"])
    assert lrs[0] == pytest.approx(1e-6)
    assert lrs[10] == pytest.approx(1e-3)  # end of warmup: the peak
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11], strict=True))  # linear warmup rises
    assert all(a >= b for a, b in zip(lrs[10:-1], lrs[11:], strict=True))  # cosine decays
    assert lrs[total] == pytest.approx(1e-5)
    assert lrs[30] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # half way through the cosine


def test_task_modules_learn_at_full_rate_and_frozen_targets_are_left_out():
    from tests.helpers.training import TwoViewConsistency

    task = TwoViewConsistency(vitzoo.create("vivit_fact_enc_nano_8x2", num_classes=0))
    groups = param_groups(task, weight_decay=0.05, layer_decay=0.5)
    where = {n: g for g in groups for n in g["param_names"]}
    trainable = {n for n, p in task.named_parameters() if p.requires_grad}
    assert set(where) == trainable and not any(n.startswith("target.") for n in where)  # the target is not trained
    model_ids = layer_ids(task.model)
    for name, group in where.items():
        if name.startswith("model."):  # layer ids and decay rules of the model, under the model. prefix
            assert group["layer_id"] == model_ids[name.removeprefix("model.")], name
        else:  # the projection head: last layer id (full lr), decay on its matrix only
            assert group["lr_scale"] == 1.0 and group["weight_decay"] == (0.05 if name.endswith("weight") else 0.0)
    assert where["projector.weight"]["layer_id"] == max(model_ids.values())


def test_model_no_weight_decay_names_replace_the_default_rule():
    model = vitzoo.create("vivit_joint_nano_8x2")
    model.no_weight_decay = lambda: {"patch_embed.proj.weight"}  # timm's convention: names relative to the model
    decay = {n: g["weight_decay"] for g in param_groups(model, weight_decay=0.1) for n in g["param_names"]}
    assert decay["patch_embed.proj.weight"] == 0.0  # listed
    assert decay["encoder.transformer.pos_embed"] == 0.1  # not listed: the name rule does not apply any more
    assert all(v == 0.0 for n, v in decay.items() if n.endswith("bias"))  # 1-D parameters never decay
    model.no_weight_decay = lambda: {"pos_embd"}
    with pytest.raises(ValueError, match="pos_embd"):
        param_groups(model, weight_decay=0.1)
