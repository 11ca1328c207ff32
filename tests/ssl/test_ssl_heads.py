"""Heads: the papers' default layouts (built on the meta device), configurable widths, SimCLR v2's trunk."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vitzoo.ssl import heads


def layout(head: nn.Sequential) -> list[list[str]]:
    """Per layer: the module types with their widths, e.g. ['Linear(64->4096, bias)', 'BatchNorm1d(4096)', 'ReLU']."""
    out = []
    for layer in head:
        parts = []
        for m in layer:
            if isinstance(m, nn.Linear):
                parts.append(f"Linear({m.in_features}->{m.out_features}{', bias' if m.bias is not None else ''})")
            elif isinstance(m, nn.BatchNorm1d):
                parts.append(f"BatchNorm1d({m.num_features}{'' if m.affine else ', no affine'})")
            else:
                parts.append(type(m).__name__)
        out.append(parts)
    return out


def test_default_layouts_follow_the_papers():
    with torch.device("meta"):
        assert layout(heads.simclr_projection(in_dim=2048)) == [
            ["Linear(2048->2048, bias)", "ReLU"],
            ["Linear(2048->128, bias)"],
        ]
        assert layout(heads.simclr_v2_projection(in_dim=2048)) == [
            ["Linear(2048->2048)", "BatchNorm1d(2048)", "ReLU"],
            ["Linear(2048->2048)", "BatchNorm1d(2048)", "ReLU"],
            ["Linear(2048->128)", "BatchNorm1d(128)"],
        ]
        assert layout(heads.byol_projection(in_dim=2048)) == [
            ["Linear(2048->4096, bias)", "BatchNorm1d(4096)", "ReLU"],
            ["Linear(4096->256, bias)"],
        ]
        assert layout(heads.byol_prediction()) == [
            ["Linear(256->4096, bias)", "BatchNorm1d(4096)", "ReLU"],
            ["Linear(4096->256, bias)"],
        ]
        assert layout(heads.simsiam_projection(in_dim=2048)) == [
            ["Linear(2048->2048)", "BatchNorm1d(2048)", "ReLU"],
            ["Linear(2048->2048)", "BatchNorm1d(2048)", "ReLU"],
            ["Linear(2048->2048)", "BatchNorm1d(2048, no affine)"],
        ]
        assert layout(heads.simsiam_prediction()) == [
            ["Linear(2048->512)", "BatchNorm1d(512)", "ReLU"],
            ["Linear(512->2048, bias)"],
        ]
        assert layout(heads.vicreg_expander(in_dim=2048)) == [
            ["Linear(2048->8192, bias)", "BatchNorm1d(8192)", "ReLU"],
            ["Linear(8192->8192, bias)", "BatchNorm1d(8192)", "ReLU"],
            ["Linear(8192->8192)"],
        ]


@pytest.mark.parametrize(
    ("build", "kwargs", "out"),
    [
        (heads.simclr_projection, dict(in_dim=64, hidden_dim=32, out_dim=16), 16),
        (heads.simclr_v2_projection, dict(in_dim=64, hidden_dim=32, out_dim=16, num_layers=4), 16),
        (heads.byol_projection, dict(in_dim=64, hidden_dim=32, out_dim=16), 16),
        (heads.byol_prediction, dict(in_dim=16, hidden_dim=32, out_dim=16), 16),
        (heads.simsiam_projection, dict(in_dim=64, hidden_dim=32, out_dim=24), 24),
        (heads.simsiam_prediction, dict(in_dim=24, hidden_dim=8, out_dim=24), 24),
        (heads.vicreg_expander, dict(in_dim=64, hidden_dim=48, out_dim=48), 48),
    ],
)
def test_small_widths_run(build, kwargs, out):
    head = build(**kwargs)
    assert head(torch.randn(5, kwargs["in_dim"])).shape == (5, out)


def test_simclr_v2_last_batchnorm_has_scale_but_no_shift():
    head = heads.simclr_v2_projection(in_dim=8, out_dim=4)
    bn = head[-1][1]
    assert bn.weight.requires_grad and not bn.bias.requires_grad and torch.equal(bn.bias, torch.zeros(4))


def test_simclr_v2_fine_tune_trunk_keeps_the_first_layers():
    head = heads.simclr_v2_projection(in_dim=64, hidden_dim=32, out_dim=16)
    trunk = heads.head_layers(head, 1)
    assert len(trunk) == 1 and trunk[0] is head[0]  # shares modules (and weights) with the trained head
    assert heads.head_width(head, 1, 64) == 32 and heads.head_width(head, 0, 64) == 64
    assert heads.head_width(head, 3, 64) == 16
    classifier = nn.Sequential(trunk, nn.Linear(heads.head_width(head, 1, 64), 10))
    assert classifier(torch.randn(4, 64)).shape == (4, 10)
    with pytest.raises(ValueError, match="choose 0 <= k <= 3"):
        heads.head_layers(head, 4)


def test_bad_width_raises():
    with pytest.raises(ValueError, match="out_dim must be a positive width"):
        heads.byol_projection(in_dim=64, out_dim=0)
