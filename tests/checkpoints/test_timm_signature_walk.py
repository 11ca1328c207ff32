"""Every argument of timm's ``VisionTransformer.__init__``: converted exactly, or refused naming it.

The table :data:`ROWS` maps each parameter (read with ``inspect.signature``, so a new timm release that adds one
fails :func:`test_every_timm_argument_has_a_row` until a row is written) to tiny non-default values. Each row is a
timm model at :data:`BASE` plus those keyword arguments; :func:`vitzoo.convert.from_timm` must give timm's
outputs to ``1e-5`` (``EXACT``) or refuse with one line naming the argument (``REFUSED``). Arguments that act only
in training, at initialisation or on placement are ``EXACT`` rows too: the converted model must still match.
"""

from __future__ import annotations

import inspect
from functools import partial

import pytest
import timm
import torch
from timm.layers import Attention, GluMlp, PatchEmbed, RmsNorm, SwiGLUPacked
from timm.models.vision_transformer import ParallelScalingBlock, ResPostBlock, VisionTransformer
from torch import nn

import vitzoo
from tests.helpers.hub_sources import perturbed

TOL = 1e-5
BASE = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)
EXACT, REFUSED = "exact", "refused"


class ScaledPatchEmbed(PatchEmbed):
    """A look-alike patch embedding that computes something else (a custom ``embed_layer``)."""

    def forward(self, x):
        return super().forward(x) * 2


class ScaledAttention(Attention):
    """A look-alike attention that computes something else (a custom ``attn_layer``)."""

    def forward(self, x, *args, **kwargs):
        return super().forward(x, *args, **kwargs) * 2


# parameter -> [(timm keyword arguments: the parameter's non-default value and what it needs, expectation)]
ROWS: dict[str, list[tuple[dict, str]]] = {
    "img_size": [({"img_size": (32, 48)}, EXACT)],
    "patch_size": [({"patch_size": 4}, EXACT), ({"patch_size": (8, 4)}, REFUSED)],
    "in_chans": [({"in_chans": 1}, EXACT)],
    "num_classes": [({"num_classes": 0}, EXACT)],
    "global_pool": [
        ({"global_pool": "avg"}, EXACT),
        ({"global_pool": "map"}, EXACT),
        ({"global_pool": "map", "class_token": False, "reg_tokens": 4}, EXACT),  # vit_so150m_patch16_reg4_map
        ({"global_pool": "avgmax"}, REFUSED),
        ({"global_pool": "max"}, REFUSED),
        ({"global_pool": ""}, REFUSED),
        ({"global_pool": "prr"}, REFUSED),
    ],
    "embed_dim": [({"embed_dim": 48}, EXACT)],
    "depth": [({"depth": 3}, EXACT)],
    "num_heads": [({"num_heads": 4}, EXACT)],
    "mlp_ratio": [({"mlp_ratio": 2.572}, EXACT)],
    "qkv_bias": [({"qkv_bias": False}, EXACT)],
    "qk_norm": [({"qk_norm": True}, EXACT)],
    "scale_attn_norm": [({"scale_attn_norm": True}, REFUSED)],
    "scale_mlp_norm": [({"scale_mlp_norm": True}, REFUSED)],
    "proj_bias": [({"proj_bias": False}, REFUSED)],
    "init_values": [({"init_values": 0.1}, EXACT)],
    "class_token": [({"class_token": False, "global_pool": "avg"}, EXACT)],
    "pos_embed": [({"pos_embed": "none"}, REFUSED)],
    "no_embed_class": [({"no_embed_class": True}, EXACT), ({"no_embed_class": True, "reg_tokens": 2}, EXACT)],
    "reg_tokens": [({"reg_tokens": 2}, EXACT), ({"reg_tokens": 2, "global_pool": "avg"}, EXACT)],
    "pre_norm": [({"pre_norm": True}, EXACT)],
    "final_norm": [({"final_norm": False}, REFUSED)],
    "fc_norm": [({"fc_norm": True}, EXACT), ({"fc_norm": False, "global_pool": "avg"}, EXACT)],
    "pool_include_prefix": [
        ({"pool_include_prefix": True}, EXACT),  # token pooling: no effect
        ({"pool_include_prefix": True, "global_pool": "avg"}, EXACT),
        ({"pool_include_prefix": True, "global_pool": "avg", "reg_tokens": 2, "fc_norm": False}, EXACT),
        ({"pool_include_prefix": True, "global_pool": "map"}, EXACT),
        ({"pool_include_prefix": True, "global_pool": "map", "class_token": False, "reg_tokens": 4}, EXACT),
    ],
    "dynamic_img_size": [({"dynamic_img_size": True}, EXACT)],
    "dynamic_img_pad": [({"dynamic_img_pad": True}, REFUSED)],
    "drop_rate": [({"drop_rate": 0.1}, EXACT)],  # training only: eval outputs
    "pos_drop_rate": [({"pos_drop_rate": 0.1}, EXACT)],
    "patch_drop_rate": [({"patch_drop_rate": 0.1}, REFUSED)],
    "proj_drop_rate": [({"proj_drop_rate": 0.1}, EXACT)],
    "attn_drop_rate": [({"attn_drop_rate": 0.1}, EXACT)],
    "drop_path_rate": [({"drop_path_rate": 0.1}, EXACT)],
    "weight_init": [({"weight_init": "jax"}, EXACT)],  # initialisation only
    "fix_init": [({"fix_init": True}, EXACT)],
    "embed_layer": [({"embed_layer": ScaledPatchEmbed}, REFUSED)],
    "embed_norm_layer": [({"embed_norm_layer": nn.LayerNorm}, REFUSED)],
    "norm_layer": [({"norm_layer": partial(nn.LayerNorm, eps=1e-5)}, EXACT), ({"norm_layer": RmsNorm}, REFUSED)],
    "act_layer": [
        ({"act_layer": "gelu_tanh"}, EXACT),
        ({"act_layer": "quick_gelu"}, EXACT),
        ({"act_layer": "silu"}, REFUSED),
    ],
    "block_fn": [({"block_fn": ResPostBlock}, REFUSED), ({"block_fn": ParallelScalingBlock}, REFUSED)],
    "mlp_layer": [({"mlp_layer": SwiGLUPacked}, REFUSED), ({"mlp_layer": GluMlp}, REFUSED)],
    "attn_layer": [({"attn_layer": ScaledAttention}, REFUSED)],
    "device": [({"device": "cpu"}, EXACT)],  # placement only
    "dtype": [({"dtype": torch.float64}, EXACT)],
}
# a fast subset for the default suite: the pooling options of issue 25 and one refusal of each kind
DEFAULT_SUITE = {"global_pool", "pool_include_prefix", "block_fn"}
CASES = [
    pytest.param(param, kwargs, expected, id=f"{param}-{i}", marks=() if param in DEFAULT_SUITE else pytest.mark.slow)
    for param, rows in ROWS.items()
    for i, (kwargs, expected) in enumerate(rows)
]


def _parameters() -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(VisionTransformer.__init__).parameters.items() if n != "self"}


def test_every_timm_argument_has_a_row():
    missing = sorted(set(_parameters()) - set(ROWS))
    assert not missing, (
        f"timm's VisionTransformer has arguments with no row in ROWS: {missing}; add a row giving each a tiny "
        "non-default value and whether vitzoo converts it exactly or refuses it"
    )
    stale = sorted(set(ROWS) - set(_parameters()))
    assert not stale, f"ROWS names arguments timm no longer has: {stale}"


@pytest.mark.parametrize(("param", "kwargs", "expected"), CASES)
def test_timm_argument_converts_exactly_or_is_refused(param, kwargs, expected):
    default = _parameters()[param].default
    assert kwargs[param] is not default and kwargs[param] != default, f"row of {param} uses timm's default"
    torch.manual_seed(0)
    source = perturbed(VisionTransformer(**{**BASE, **kwargs}))
    if expected == REFUSED:
        with pytest.raises((NotImplementedError, ValueError)) as err:
            vitzoo.convert.from_timm(source)
        message = str(err.value)
        assert param in message and "\n" not in message, message
        return
    ours = vitzoo.convert.from_timm(source).eval()
    dtype = next(source.parameters()).dtype
    h, w = source.patch_embed.img_size
    sizes = [(h, w)] + ([(h + 16, w + 8)] if kwargs.get("dynamic_img_size") else [])
    for size in sizes:
        x = torch.randn(2, source.patch_embed.proj.in_channels, *size)
        with torch.no_grad():
            ref, out = source(x.to(dtype)).float(), ours(x)
        assert (out - ref).abs().max().item() <= TOL, f"{param}={kwargs[param]!r} at {size}"


def test_so150m_reg4_map_config_at_tiny_size_is_exact(tmp_path):
    """timm's registered ``vit_so150m_patch16_reg4_map_256`` (attention pool, 4 registers, no class token), shrunk:
    through the module and through its Hub folder (``config.json`` + ``model.safetensors``)."""
    from tests.helpers.hub_sources import timm_folder

    name = "vit_so150m_patch16_reg4_map_256"
    tiny = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)
    source, folder = timm_folder(tmp_path, name, **{k: v for k, v in tiny.items() if k not in ("img_size",)})
    assert source.num_prefix_tokens == 4 and source.global_pool == "map" and not source.pool_include_prefix
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = source(x)
        for ours in (vitzoo.convert.from_timm(source), vitzoo.load(folder)):
            assert (ours.eval()(x) - ref).abs().max().item() <= TOL


def test_pool_include_prefix_is_kept_by_save_and_load(tmp_path):
    source = perturbed(VisionTransformer(**BASE, global_pool="map", reg_tokens=2, pool_include_prefix=True))
    ours = vitzoo.convert.from_timm(source).eval()
    assert ours.cfg.pool_include_prefix
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        again = vitzoo.load(vitzoo.save(ours, tmp_path / "m.safetensors"))
        assert (again(x) - source(x)).abs().max().item() <= TOL


def test_registered_timm_models_still_name_their_unsupported_parts():
    t = timm.create_model("vit_small_patch16_224", img_size=32, patch_size=8, depth=1, mlp_layer=SwiGLUPacked)
    with pytest.raises(NotImplementedError, match="mlp_layer=GluMlp"):
        vitzoo.convert.from_timm(t)
