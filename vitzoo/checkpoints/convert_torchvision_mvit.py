"""torchvision's ``MViT`` <-> vitzoo's MViT: the same network, weights mapped key by key.

torchvision (``torchvision.models.video.mvit``) describes the layout block by block (``MSBlockConfig``) and
keeps no copy of it, so the converter reads each block's facts off its modules (heads, widths, pooling kernels
and strides, where the width grows), groups the blocks into stages (a stage starts where the queries are pooled
with a stride), builds the per-stage :class:`~vitzoo.models.mvit_config.MViTConfig`, and checks that the config
expands back to exactly the blocks read. Anything vitzoo does not implement raises ``NotImplementedError``
naming the option (a custom ``block`` or ``norm_layer``, a layout that is not stage-wise, ...).

:func:`~vitzoo.models.mvit_zoo.build_torchvision_mvit` goes the other way (a torchvision ``MViT`` at a vitzoo
config: the family's benchmark reference, so it lives with the family in ``models/``; still importable from here).
torchvision's model has no normalisation constants: the config takes those of torchvision's Kinetics-400 weights
(mean 0.45, std 0.225 per channel).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re

import torch
from torch import nn

from vitzoo.checkpoints.fit import key_summary
from vitzoo.errors import CheckpointFileError, UnsupportedFeatureError
from vitzoo.layers.token_pool import pools
from vitzoo.models.mvit import MViT
from vitzoo.models.mvit_config import ONES, BlockSpec, MViTConfig, Triple, block_specs
from vitzoo.models.mvit_zoo import build_torchvision_mvit  # noqa: F401  (its home before; tests import it here)

log = logging.getLogger(__name__)

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


def _triple(values) -> Triple:
    """torchvision writes "no pooling" as an empty list."""
    return tuple(int(v) for v in values) if len(values) else ONES


# ------------------------------------------------------------------------------------------- torchvision -> vitzoo
def _unsupported(model: nn.Module) -> list[str]:
    """torchvision options vitzoo's MViT does not implement, by name."""
    from torchvision.models.video.mvit import MultiscaleBlock

    found = []
    blocks = list(model.blocks)
    if any(type(b) is not MultiscaleBlock for b in blocks):
        found.append(f"block={type(blocks[0]).__name__} (a custom block class)")
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm3d | nn.GroupNorm)]
    if norms or not isinstance(model.norm, nn.LayerNorm):
        found.append(f"norm_layer={type(norms[0] if norms else model.norm).__name__} (vitzoo's MViT uses LayerNorm)")
    eps = {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)}
    if len(eps) > 1:
        found.append(f"LayerNorms with different eps {sorted(eps)}")
    if model.conv_proj.bias is None:
        found.append("a patch embedding without bias")
    conv, tokens = model.conv_proj, (model.pos_encoding.temporal_size, *model.pos_encoding.spatial_size)
    shapes = zip(tokens, conv.kernel_size, conv.stride, conv.padding, strict=True)
    grid = [(n * s + 2 * p - k) // s + 1 for n, k, s, p in shapes]  # conv output for the tables' input size
    if grid != list(tokens):
        found.append(
            f"patch_embed_kernel={tuple(conv.kernel_size)}, patch_embed_stride={tuple(conv.stride)}, "
            f"patch_embed_padding={tuple(conv.padding)}: a {'x'.join(map(str, grid))} token grid where the position "
            f"tables are {'x'.join(map(str, tokens))}"
        )
    for b in blocks:
        acts = [type(m).__name__ for m in b.mlp if not isinstance(m, nn.Linear | nn.Dropout)]
        if acts != ["GELU"] or b.mlp[1].approximate != "none":
            found.append(f"MLP activation {acts}")
            break
    return found


def block_records(model: nn.Module) -> list[BlockSpec]:
    """Each torchvision block's facts as a :class:`BlockSpec` (its ``stage`` field set to -1: not known yet)."""
    records = []
    for b in model.blocks:
        attn = b.attn
        pool_q, pool_k = attn.pool_q, attn.pool_k
        linears = [m for m in b.mlp if isinstance(m, nn.Linear)]
        records.append(
            BlockSpec(
                stage=-1,
                dim=b.norm1.normalized_shape[0],
                dim_out=linears[-1].out_features,
                attention_dim=attn.output_dim,
                num_heads=attn.num_heads,
                kernel_q=_triple(pool_q.pool.kernel_size) if pool_q is not None else ONES,
                stride_q=_triple(pool_q.pool.stride) if pool_q is not None else ONES,
                kernel_kv=_triple(pool_k.pool.kernel_size) if pool_k is not None else ONES,
                stride_kv=_triple(pool_k.pool.stride) if pool_k is not None else ONES,
            )
        )
    return records


def _stage_starts(records: list[BlockSpec]) -> list[int]:
    """A stage starts at the first block and wherever the queries are pooled with a stride."""
    return [i for i, r in enumerate(records) if i == 0 or math.prod(r.stride_q) > 1]


def _one(values: list, what: str):
    """The single value of ``values``; raises naming ``what`` when they differ."""
    if len(set(values)) != 1:
        raise UnsupportedFeatureError(f"torchvision MViT with {what} varying as {values} is not a stage-wise layout")
    return values[0]


def config_from_torchvision(model: nn.Module) -> MViTConfig:
    """The :class:`MViTConfig` of a torchvision ``MViT`` (raises ``NotImplementedError`` for what does not fit)."""
    found = _unsupported(model)
    if found:
        raise UnsupportedFeatureError(f"torchvision MViT uses options vitzoo does not implement: {', '.join(found)}")
    records = block_records(model)
    starts = _stage_starts(records)
    stages = [records[a:b] for a, b in zip(starts, [*starts[1:], len(records)], strict=True)]
    blocks = list(model.blocks)
    attn0 = blocks[0].attn
    q_pooled = [r.kernel_q for r in records if pools(r.kernel_q, r.stride_q)]
    kv_pooled = [r.kernel_kv for r in records if pools(r.kernel_kv, r.stride_kv)]
    fc1 = next(m for m in blocks[0].mlp if isinstance(m, nn.Linear))
    dropouts = [m.p for b in blocks for m in b.modules() if isinstance(m, nn.Dropout)]
    conv = model.conv_proj
    stride = _triple(conv.stride)
    spatial = tuple(n * s for n, s in zip(model.pos_encoding.spatial_size, stride[1:], strict=True))
    cfg = MViTConfig(
        img_size=spatial[0] if spatial[0] == spatial[1] else spatial,
        num_frames=model.pos_encoding.temporal_size * stride[0],
        in_chans=conv.in_channels,
        num_classes=model.head[-1].out_features,
        drop_rate=float(model.head[0].p),
        mean=KINETICS_MEAN,
        std=KINETICS_STD,
        patch_kernel=_triple(conv.kernel_size),
        patch_stride=stride,
        patch_padding=_triple(conv.padding),
        depths=tuple(len(s) for s in stages),
        widths=tuple(_one([r.attention_dim for r in s], f"attention width in stage {i}") for i, s in enumerate(stages)),
        num_heads=tuple(_one([r.num_heads for r in s], f"num_heads in stage {i}") for i, s in enumerate(stages)),
        q_strides=tuple(s[0].stride_q for s in stages),
        kv_strides=tuple(_one([r.stride_kv for r in s], f"stride_kv in stage {i}") for i, s in enumerate(stages)),
        kernel_q=_one(q_pooled, "kernel_q") if q_pooled else ONES,
        kernel_kv=_one(kv_pooled, "kernel_kv") if kv_pooled else ONES,
        pool_q_every_block=len(q_pooled) == len(records),
        expand_in_attention=_one([b.proj_after_attn for b in blocks], "proj_after_attn"),
        rel_pos=attn0.rel_pos_h is not None,
        residual_pool=attn0.residual_pool,
        residual_with_cls=attn0.residual_with_cls_embed,
        class_token=True,
        global_pool="token",
        mlp_ratio=fc1.out_features / attn0.output_dim,
        qkv_bias=attn0.qkv.bias is not None,
        norm_eps=model.norm.eps,
        proj_drop_rate=_one(dropouts, "attention_dropout") if dropouts else 0.0,
        drop_path_rate=float(f"{blocks[-1].stochastic_depth.p:.12g}"),  # p * (n - 1) / (n - 1.0) rounds
    )
    expected = [dataclasses.replace(s, stage=-1) for s in block_specs(cfg)]
    for i, (ours, theirs) in enumerate(zip(expected, records, strict=True)):
        if ours != theirs:
            diff = {f.name: (getattr(theirs, f.name), getattr(ours, f.name)) for f in dataclasses.fields(BlockSpec)}
            diff = {k: v for k, v in diff.items() if v[0] != v[1]}
            raise UnsupportedFeatureError(
                f"torchvision MViT block {i} has {', '.join(f'{k}={a}' for k, (a, _) in diff.items())} where the "
                f"stage-wise layout gives {', '.join(f'{k}={b}' for k, (_, b) in diff.items())}: not a layout vitzoo "
                "expresses (see its block_setting and proj_after_attn)"
            )
    return cfg


# torchvision key (inside one block) -> vitzoo key; "project." depends on where the width grows.
_BLOCK_RENAMES = (
    (r"^attn\.project\.0\.", "attn.proj."),
    (r"^attn\.pool_([qkv])\.pool\.", r"attn.pool_\1."),
    (r"^attn\.pool_([qkv])\.norm_act\.0\.", r"attn.norm_\1."),
    (r"^mlp\.0\.", "mlp.fc1."),
    (r"^mlp\.3\.", "mlp.fc2."),
)
_TOP_RENAMES = {
    "conv_proj.weight": "patch_embed.proj.weight",
    "conv_proj.bias": "patch_embed.proj.bias",
    "pos_encoding.class_token": "cls_token",
    "pos_encoding.spatial_pos": "pos_embed_spatial",
    "pos_encoding.temporal_pos": "pos_embed_temporal",
    "pos_encoding.class_pos": "pos_embed_class",
    "norm.weight": "norm.weight",
    "norm.bias": "norm.bias",
    "head.1.weight": "head.weight",
    "head.1.bias": "head.bias",
}


def state_from_torchvision(state: dict[str, torch.Tensor], cfg: MViTConfig) -> dict[str, torch.Tensor]:
    """torchvision's state dict renamed (and the position tables given a batch axis) for vitzoo's MViT."""
    where = [(s.stage, j) for s, j in _block_positions(cfg)]
    shortcut = "shortcut_proj_attn." if cfg.expand_in_attention else "shortcut_proj_mlp."
    out = {}
    for key, value in state.items():
        if key in _TOP_RENAMES:
            name = _TOP_RENAMES[key]
            if name in ("cls_token", "pos_embed_class"):
                value = value.reshape(1, 1, -1)  # (D,) -> (1, 1, D)
            elif name.startswith("pos_embed"):
                value = value[None]  # (N, D) -> (1, N, D)
            out[name] = value
            continue
        m = re.match(r"^blocks\.(\d+)\.(.*)$", key)
        if m is None:
            raise UnsupportedFeatureError(f"torchvision MViT key {key!r} has no vitzoo counterpart")
        stage, j = where[int(m[1])]
        rest = m[2]
        for pattern, repl in _BLOCK_RENAMES:
            rest = re.sub(pattern, repl, rest)
        rest = re.sub(r"^project\.", shortcut, rest)
        out[f"stages.{stage}.blocks.{j}.{rest}"] = value
    return out


def _block_positions(cfg: MViTConfig) -> list[tuple[BlockSpec, int]]:
    """Each block's spec and its index inside its stage."""
    out, counts = [], [0] * cfg.num_stages
    for spec in block_specs(cfg):
        out.append((spec, counts[spec.stage]))
        counts[spec.stage] += 1
    return out


def check_keys(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Raise one line unless ``state`` has exactly ``model``'s keys and shapes."""
    target = model.state_dict()
    missing, unexpected = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    misshaped = sorted(k for k in set(state) & set(target) if state[k].shape != target[k].shape)
    if missing or unexpected or misshaped:
        raise CheckpointFileError(f"cannot load {source}: {key_summary(missing, unexpected, misshaped)}")


def from_torchvision_mvit(model: nn.Module) -> MViT:
    """torchvision ``MViT`` -> vitzoo :class:`~vitzoo.models.mvit.MViT` with the same weights, in eval mode."""
    cfg = config_from_torchvision(model)
    log.info(
        "torchvision MViT: %d blocks in stages %s, widths %s, heads %s, %s positions, %d frames at %s px",
        sum(cfg.depths), cfg.depths, cfg.widths, cfg.num_heads, "relative" if cfg.rel_pos else "absolute",
        cfg.num_frames, "x".join(map(str, cfg.img_hw)),
    )  # fmt: skip
    with torch.device("meta"):  # no initialisation: every tensor comes from torchvision
        ours = MViT(cfg)
    state = {k: v.detach().clone() for k, v in state_from_torchvision(model.state_dict(), cfg).items()}
    check_keys(ours, state, source="torchvision MViT")
    ours.load_state_dict(state, strict=True, assign=True)  # the tensors themselves, in torchvision's dtype and device
    return ours.eval()
