"""Every argument of torchvision's ``MViT`` and ``SwinTransformer3d`` (what ``mvit_v1_b`` / ``mvit_v2_s`` /
``swin3d_t`` ... pass on): converted exactly, or refused naming it.

The arguments are read from each class's ``__init__`` signature, so a torchvision release that adds one fails
:func:`test_every_argument_has_a_row` until a row is written; each row sets tiny non-default values and
:func:`vitzoo.convert.from_torchvision` must give torchvision's logits to ``1e-5`` or refuse with one line naming
the argument.
"""

from __future__ import annotations

import inspect
from functools import partial

import pytest
import torch
from torch import nn
from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformerBlockV2
from torchvision.models.video.mvit import MSBlockConfig, MultiscaleBlock, MViT
from torchvision.models.video.swin_transformer import PatchEmbed3d, SwinTransformer3d

import vitzoo
from tests.helpers.hub_sources import perturbed

TOL = 1e-5
EXACT, REFUSED = "exact", "refused"


def _mvit_setting(widths=(16, 32), heads=(1, 2), **changes) -> list[MSBlockConfig]:
    """Two stages of one block each (a query stride of 2 at the second), kernels 3."""
    blocks = []
    for i, (c_in, c_out, h) in enumerate(zip((widths[0], *widths[:-1]), widths, heads, strict=True)):
        stride_q = [1, 2, 2] if i else [1, 1, 1]
        stride_kv = [1, 2, 2] if i else [1, 4, 4]
        blocks.append(MSBlockConfig(num_heads=h, input_channels=c_in, output_channels=c_out, kernel_q=[3, 3, 3],
                                    kernel_kv=[3, 3, 3], stride_q=stride_q, stride_kv=stride_kv))  # fmt: skip
    for block in blocks:
        for key, value in changes.items():
            setattr(block, key, value)
    return blocks


class MyBlock(MultiscaleBlock):
    """A block class of the user's (``block=``)."""


class MyPatchEmbed(PatchEmbed3d):
    """A patch embedding class of the user's (``patch_embed=``) that computes something else."""

    def forward(self, x):
        return super().forward(x) * 2


MVIT_BASE = dict(spatial_size=(32, 32), temporal_size=4, block_setting=_mvit_setting(), residual_pool=True,
                 residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True, num_classes=5)  # fmt: skip
SWIN_BASE = dict(patch_size=[2, 4, 4], embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=[2, 4, 4],
                 num_classes=5)  # fmt: skip

ROWS = {
    MViT: {
        "spatial_size": [({"spatial_size": (48, 48)}, EXACT), ({"spatial_size": (32, 48)}, EXACT)],
        "temporal_size": [({"temporal_size": 8}, EXACT)],
        "block_setting": [
            ({"block_setting": _mvit_setting(widths=(16, 24), heads=(2, 2))}, EXACT),
            ({"block_setting": _mvit_setting(kernel_q=[1, 3, 3])}, EXACT),
        ],
        "residual_pool": [({"residual_pool": False}, EXACT)],
        "residual_with_cls_embed": [({"residual_with_cls_embed": True}, EXACT)],
        "rel_pos_embed": [({"rel_pos_embed": False}, EXACT)],
        "proj_after_attn": [({"proj_after_attn": False}, REFUSED)],  # vitzoo: the width grows in a stage's first block
        "dropout": [({"dropout": 0.1}, EXACT)],  # training only: eval outputs
        "attention_dropout": [({"attention_dropout": 0.1}, EXACT)],
        "stochastic_depth_prob": [({"stochastic_depth_prob": 0.1}, EXACT)],
        "num_classes": [({"num_classes": 7}, EXACT)],
        "block": [({"block": MyBlock}, REFUSED)],
        "norm_layer": [
            ({"norm_layer": partial(nn.LayerNorm, eps=1e-5)}, EXACT),
            ({"norm_layer": nn.BatchNorm1d}, REFUSED),
        ],
        "patch_embed_kernel": [
            ({"patch_embed_kernel": (3, 5, 5)}, REFUSED),  # a token grid other than the position tables'
            ({"patch_embed_kernel": (3, 9, 9)}, EXACT),
        ],
        "patch_embed_stride": [({"patch_embed_stride": (2, 2, 2)}, EXACT)],
        "patch_embed_padding": [({"patch_embed_padding": (1, 2, 2)}, EXACT)],
    },
    SwinTransformer3d: {
        "patch_size": [({"patch_size": [1, 4, 4]}, EXACT)],
        "embed_dim": [({"embed_dim": 24}, EXACT)],
        "depths": [({"depths": [2, 1]}, EXACT)],
        "num_heads": [({"num_heads": [1, 4]}, EXACT)],
        "window_size": [({"window_size": [2, 2, 2]}, EXACT)],
        "mlp_ratio": [({"mlp_ratio": 2.0}, EXACT)],
        "dropout": [({"dropout": 0.1}, EXACT)],
        "attention_dropout": [({"attention_dropout": 0.1}, EXACT)],
        "stochastic_depth_prob": [({"stochastic_depth_prob": 0.0}, EXACT)],
        "num_classes": [({"num_classes": 7}, EXACT)],
        "norm_layer": [
            ({"norm_layer": partial(nn.LayerNorm, eps=1e-6)}, EXACT),
            ({"norm_layer": nn.Identity}, REFUSED),
        ],
        "block": [({"block": SwinTransformerBlockV2}, REFUSED)],
        "downsample_layer": [({"downsample_layer": PatchMergingV2}, REFUSED)],
        "patch_embed": [({"patch_embed": MyPatchEmbed}, REFUSED)],
    },
}  # fmt: skip
BASES = {MViT: MVIT_BASE, SwinTransformer3d: SWIN_BASE}
DEFAULT_SUITE = {"block", "patch_embed", "rel_pos_embed"}  # the full walk: -m slow
CASES = [
    pytest.param(cls, arg, kwargs, expected, id=f"{cls.__name__}-{arg}-{i}",
                 marks=() if arg in DEFAULT_SUITE else pytest.mark.slow)
    for cls, rows in ROWS.items()
    for arg, cases in rows.items()
    for i, (kwargs, expected) in enumerate(cases)
]  # fmt: skip


def _arguments(cls) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__name__)
def test_every_argument_has_a_row(cls):
    missing = sorted(set(_arguments(cls)) - set(ROWS[cls]))
    assert not missing, (
        f"torchvision's {cls.__name__} has arguments with no row in ROWS: {missing}; add a row giving each a tiny "
        "non-default value and whether vitzoo converts it exactly or refuses it"
    )


@pytest.mark.parametrize(("cls", "arg", "kwargs", "expected"), CASES)
def test_argument_converts_exactly_or_is_refused(cls, arg, kwargs, expected):
    default = _arguments(cls)[arg].default
    if default is not inspect.Parameter.empty:
        assert kwargs[arg] != default, f"row of {cls.__name__}.{arg} uses torchvision's default"
    torch.manual_seed(0)
    source = perturbed(cls(**{**BASES[cls], **kwargs}))
    if expected == REFUSED:
        with pytest.raises((NotImplementedError, ValueError)) as err:
            vitzoo.convert.from_torchvision(source)
        message = str(err.value)
        assert arg in message and "\n" not in message, message
        return
    ours = vitzoo.convert.from_torchvision(source).eval()
    if cls is MViT:
        x = torch.randn(2, 3, kwargs.get("temporal_size", 4), *kwargs.get("spatial_size", (32, 32)))
    else:
        x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert (ours(x) - source(x)).abs().max().item() <= TOL, f"{cls.__name__}.{arg}={kwargs[arg]!r}"
