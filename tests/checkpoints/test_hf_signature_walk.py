"""Every field of transformers' ViT / ViViT / TimeSformer / VideoMAE configs: converted exactly, or refused naming it.

The fields are read from each config class's ``__init__`` signature, so a transformers release that adds one fails
:func:`test_every_config_field_has_a_row` until a row is written. Each row sets tiny non-default values on the
family's :data:`BASE` config; :func:`vitzoo.convert.from_hf` must give the HF classifier's logits to ``1e-5``
(``EXACT``; fields that act only in training, in the loss, in the pre-training decoder or as metadata are rows too)
or refuse with one line naming the field (``REFUSED``).
"""

from __future__ import annotations

import inspect

import pytest
import torch

import vitzoo
from tests.helpers.hub_sources import perturbed, to_vitzoo

transformers = pytest.importorskip("transformers")

TOL = 1e-5
EXACT, REFUSED = "exact", "refused"
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3)
TINY_VIDEO = dict(SMALL, image_size=16, patch_size=8)
BASE = {  # family -> (config class, classifier class, tiny config)
    "vit": ("ViTConfig", "ViTForImageClassification", dict(SMALL, image_size=16, patch_size=8)),
    "vivit": ("VivitConfig", "VivitForVideoClassification", dict(TINY_VIDEO, num_frames=4, tubelet_size=[2, 8, 8])),
    "timesformer": ("TimesformerConfig", "TimesformerForVideoClassification", dict(TINY_VIDEO, num_frames=2)),
    "videomae": ("VideoMAEConfig", "VideoMAEForVideoClassification", dict(TINY_VIDEO, num_frames=4)),
}  # fmt: skip

# rows every family takes: PretrainedConfig's fields (metadata, output format, loss) and the shared trunk
COMMON: dict[str, list[tuple[dict, str]]] = {
    "transformers_version": [({"transformers_version": "4.40.0"}, EXACT)],
    "architectures": [({"architectures": ["SomeOtherName"]}, EXACT)],  # a model object converts by its class
    "output_hidden_states": [({"output_hidden_states": True}, EXACT)],
    "return_dict": [({"return_dict": False}, EXACT)],
    "dtype": [({"dtype": "float64"}, EXACT)],
    "chunk_size_feed_forward": [({"chunk_size_feed_forward": 2}, EXACT)],
    "is_encoder_decoder": [({"is_encoder_decoder": True}, EXACT)],
    "id2label": [({"id2label": {0: "a", 1: "b"}}, EXACT)],
    "label2id": [({"label2id": {"a": 0, "b": 1, "c": 2}}, EXACT)],
    "problem_type": [({"problem_type": "multi_label_classification"}, EXACT)],  # the loss only
    "hidden_size": [({"hidden_size": 48}, EXACT)],
    "num_hidden_layers": [({"num_hidden_layers": 3}, EXACT)],
    "num_attention_heads": [({"num_attention_heads": 4}, EXACT)],
    "intermediate_size": [({"intermediate_size": 40}, EXACT)],
    "hidden_act": [
        ({"hidden_act": "gelu_new"}, EXACT),
        ({"hidden_act": "quick_gelu"}, EXACT),
        ({"hidden_act": "relu"}, REFUSED),
    ],  # fmt: skip
    "hidden_dropout_prob": [({"hidden_dropout_prob": 0.1}, EXACT)],  # training only: eval outputs
    "attention_probs_dropout_prob": [({"attention_probs_dropout_prob": 0.1}, EXACT)],
    "initializer_range": [({"initializer_range": 0.5}, EXACT)],
    "layer_norm_eps": [({"layer_norm_eps": 1e-3}, EXACT)],
    "image_size": [({"image_size": 24}, EXACT), ({"image_size": [16, 24]}, REFUSED)],
    "num_channels": [({"num_channels": 1}, EXACT)],
    "qkv_bias": [({"qkv_bias": False}, EXACT)],
    "patch_size": [({"patch_size": 4}, EXACT), ({"patch_size": [8, 4]}, REFUSED)],
    "num_frames": [({"num_frames": 6}, EXACT)],
    "pooler_output_size": [({"pooler_output_size": 8}, EXACT)],  # the pooler is not part of the classifier
    "pooler_act": [({"pooler_act": "relu"}, EXACT)],
}
FAMILY_ROWS: dict[str, dict[str, list[tuple[dict, str]]]] = {
    "vit": {"encoder_stride": [({"encoder_stride": 4}, EXACT)]},  # masked-image-modeling decoder only
    "vivit": {
        "tubelet_size": [({"tubelet_size": [1, 8, 8]}, EXACT), ({"tubelet_size": [2, 8, 4]}, REFUSED)],
        "image_size": [({"image_size": 24}, EXACT)],
    },
    "timesformer": {
        "attention_type": [
            ({"attention_type": "space_only"}, REFUSED),
            ({"attention_type": "joint_space_time"}, REFUSED),
        ],
        "drop_path_rate": [({"drop_path_rate": 1}, EXACT)],  # typed int by transformers; training only
        "num_frames": [({"num_frames": 3}, EXACT)],
    },  # fmt: skip
    "videomae": {
        "tubelet_size": [({"tubelet_size": 1}, EXACT)],
        "qv_bias": [({"qv_bias": False}, EXACT)],
        "use_mean_pooling": [({"use_mean_pooling": False}, REFUSED)],  # the classifier reads a patch token
        "decoder_num_attention_heads": [({"decoder_num_attention_heads": 2}, EXACT)],  # pre-training decoder only
        "decoder_hidden_size": [({"decoder_hidden_size": 16}, EXACT)],
        "decoder_num_hidden_layers": [({"decoder_num_hidden_layers": 1}, EXACT)],
        "decoder_intermediate_size": [({"decoder_intermediate_size": 32}, EXACT)],
        "norm_pix_loss": [({"norm_pix_loss": False}, EXACT)],
        "num_frames": [({"num_frames": 2}, EXACT)],
    },
}
DEFAULT_SUITE = {"attention_type", "use_mean_pooling", "qv_bias"}  # the full walk: -m slow


def _fields(family: str) -> dict[str, inspect.Parameter]:
    cls = getattr(transformers, BASE[family][0])
    params = inspect.signature(cls.__init__).parameters.items()
    return {n: p for n, p in params if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _rows(family: str) -> dict[str, list[tuple[dict, str]]]:
    return {**{k: v for k, v in COMMON.items() if k in _fields(family)}, **FAMILY_ROWS[family]}


CASES = [
    pytest.param(
        family, field, kwargs, expected, id=f"{family}-{field}-{i}",
        marks=() if field in DEFAULT_SUITE else pytest.mark.slow,
    )
    for family in BASE
    for field, rows in _rows(family).items()
    for i, (kwargs, expected) in enumerate(rows)
]  # fmt: skip


@pytest.mark.parametrize("family", list(BASE))
def test_every_config_field_has_a_row(family):
    missing = sorted(set(_fields(family)) - set(_rows(family)))
    assert not missing, (
        f"transformers' {BASE[family][0]} has fields with no row: {missing}; add rows to COMMON or FAMILY_ROWS giving "
        "each a tiny non-default value and whether vitzoo converts it exactly or refuses it"
    )


def _inputs(model, family: str) -> torch.Tensor:
    c = model.config
    size = c.image_size if isinstance(c.image_size, int) else c.image_size[0]
    if family == "vit":
        return torch.randn(2, c.num_channels, size, size)
    return torch.randn(2, c.num_frames, c.num_channels, size, size)  # HF's (B, T, C, H, W)


@pytest.mark.parametrize(("family", "field", "kwargs", "expected"), CASES)
def test_config_field_converts_exactly_or_is_refused(family, field, kwargs, expected):
    default = _fields(family)[field].default
    assert kwargs[field] != default, f"row of {family}.{field} uses transformers' default"
    config_name, class_name, base = BASE[family]
    torch.manual_seed(0)
    config = getattr(transformers, config_name)(**{**base, **kwargs})
    if expected == REFUSED:
        config.attn_implementation = "eager"
        try:
            source = getattr(transformers, class_name)(config)
        except (ValueError, TypeError, AssertionError, RuntimeError):
            pytest.skip(f"transformers itself cannot build {family} with {kwargs}")
        with pytest.raises((NotImplementedError, ValueError)) as err:
            vitzoo.convert.from_hf(source)
        message = str(err.value)
        assert field in message and "\n" not in message, message
        return
    source = perturbed(getattr(transformers, class_name)(config))
    ours = vitzoo.convert.from_hf(source).eval()
    source.config.return_dict = True  # its output format only (transformers 5's classifiers break without it)
    pixels = _inputs(source, family).to(next(source.parameters()).dtype)
    with torch.no_grad():
        ref = source(pixel_values=pixels).logits
        got = ours(pixels if family == "vit" else to_vitzoo(pixels))
    assert (got - ref).abs().max().item() <= TOL, f"{family}.{field}={kwargs[field]!r}"
