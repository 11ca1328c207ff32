"""Projection heads and predictors of the self-supervised methods, as plain ``nn.Sequential`` builders.

Every head is an ``nn.Sequential`` of *layers*, each layer itself an ``nn.Sequential`` (Linear, then
BatchNorm and ReLU where the paper has them), so ``head[:k]`` is its first ``k`` layers (see
:func:`head_layers`). Defaults are the papers' (for ResNet-50 features); pass smaller widths for small
models. ``in_dim`` is the encoder's feature width: ``getattr(model, "num_features", model.cfg.embed_dim)``.

============================  =============================================================  ===========
builder                       layers (defaults)                                              paper
============================  =============================================================  ===========
``simclr_projection``         Linear(in, in) ReLU | Linear(in, 128)                          SimCLR v1
``simclr_v2_projection``      [Linear(in, in, no bias) BN ReLU] x 2 | Linear(in, 128) BN     SimCLR v2
``byol_projection``           Linear(in, 4096) BN ReLU | Linear(4096, 256)                   BYOL
``byol_prediction``           Linear(256, 4096) BN ReLU | Linear(4096, 256)                  BYOL
``simsiam_projection``        [Linear(in, 2048, no bias) BN ReLU] x 2 | Linear BN(affine=F)  SimSiam
``simsiam_prediction``        Linear(2048, 512, no bias) BN ReLU | Linear(512, 2048)         SimSiam
``vicreg_expander``           [Linear(in, 8192) BN ReLU] x 2 | Linear(8192, 8192, no bias)   VICReg
============================  =============================================================  ===========

The last BatchNorm of SimCLR v2 has a scale but no shift (``center=False`` in the authors' code): its
bias is fixed at 0 (``requires_grad=False``).
"""

from __future__ import annotations

from torch import nn


def _layer(in_dim: int, out_dim: int, *, bias: bool = True, bn: bool = False, relu: bool = False) -> nn.Sequential:
    parts: list[nn.Module] = [nn.Linear(in_dim, out_dim, bias=bias)]
    if bn:
        parts.append(nn.BatchNorm1d(out_dim))
    if relu:
        parts.append(nn.ReLU(inplace=True))
    return nn.Sequential(*parts)


def _check(**dims: int | None) -> None:
    for name, value in dims.items():
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive width, got {value}")


def simclr_projection(*, in_dim: int, hidden_dim: int | None = None, out_dim: int = 128) -> nn.Sequential:
    """SimCLR v1 (Chen et al., 2020): a 2-layer MLP, hidden width = ``in_dim`` by default, 128 out."""
    _check(in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim)
    hidden = hidden_dim or in_dim
    return nn.Sequential(_layer(in_dim, hidden, relu=True), _layer(hidden, out_dim))


def simclr_v2_projection(
    *, in_dim: int, hidden_dim: int | None = None, out_dim: int = 128, num_layers: int = 3
) -> nn.Sequential:
    """SimCLR v2 (Chen et al., 2020b): ``num_layers`` Linear+BN layers (ReLU between), hidden = ``in_dim``.

    For fine-tuning "from the middle of the head", keep ``head_layers(head, 1)`` on the encoder.
    """
    _check(in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim, num_layers=num_layers)
    hidden = hidden_dim or in_dim
    widths = [in_dim] + [hidden] * (num_layers - 1)
    layers = [_layer(widths[i], widths[i + 1], bias=False, bn=True, relu=True) for i in range(num_layers - 1)]
    last = _layer(widths[-1], out_dim, bias=False, bn=True)
    last[1].bias.requires_grad_(False)  # scale, no shift
    return nn.Sequential(*layers, last)


def byol_projection(*, in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Sequential:
    """BYOL (Grill et al., 2020) projector: Linear, BN, ReLU, Linear (4096 hidden, 256 out)."""
    _check(in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim)
    return nn.Sequential(_layer(in_dim, hidden_dim, bn=True, relu=True), _layer(hidden_dim, out_dim))


def byol_prediction(*, in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Sequential:
    """BYOL predictor: the projector's architecture on the projection (256 -> 4096 -> 256)."""
    return byol_projection(in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim)


def simsiam_projection(*, in_dim: int, hidden_dim: int = 2048, out_dim: int = 2048) -> nn.Sequential:
    """SimSiam (Chen and He, 2021) projector: 3 layers with BN, the output BN without affine parameters."""
    _check(in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim)
    return nn.Sequential(
        _layer(in_dim, hidden_dim, bias=False, bn=True, relu=True),
        _layer(hidden_dim, hidden_dim, bias=False, bn=True, relu=True),
        nn.Sequential(nn.Linear(hidden_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim, affine=False)),
    )


def simsiam_prediction(*, in_dim: int = 2048, hidden_dim: int = 512, out_dim: int = 2048) -> nn.Sequential:
    """SimSiam predictor: a bottleneck MLP (2048 -> 512 -> 2048), BN and ReLU on the hidden layer."""
    _check(in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim)
    return nn.Sequential(_layer(in_dim, hidden_dim, bias=False, bn=True, relu=True), _layer(hidden_dim, out_dim))


def vicreg_expander(*, in_dim: int, hidden_dim: int = 8192, out_dim: int = 8192, num_layers: int = 3) -> nn.Sequential:
    """VICReg (Bardes et al., 2022) expander: ``num_layers`` Linear layers (BN, ReLU between), 8192 wide."""
    _check(in_dim=in_dim, hidden_dim=hidden_dim, out_dim=out_dim, num_layers=num_layers)
    widths = [in_dim] + [hidden_dim] * (num_layers - 1)
    layers = [_layer(widths[i], widths[i + 1], bn=True, relu=True) for i in range(num_layers - 1)]
    return nn.Sequential(*layers, _layer(widths[-1], out_dim, bias=False))


def head_layers(head: nn.Sequential, k: int) -> nn.Sequential:
    """The first ``k`` layers of a head (``0 <= k <= len(head)``), sharing its modules and weights.

    SimCLR v2 fine-tunes from the first layer of its 3-layer head: build the classifier as
    ``nn.Sequential(encoder, head_layers(head, 1), nn.Linear(head_width(head, 1, in_dim), num_classes))``.
    """
    if not 0 <= k <= len(head):
        raise ValueError(f"k={k}: this head has {len(head)} layers; choose 0 <= k <= {len(head)}")
    return head[:k]


def head_width(head: nn.Sequential, k: int, in_dim: int) -> int:
    """Width of the output of ``head_layers(head, k)`` (``in_dim`` for ``k = 0``)."""
    trunk = head_layers(head, k)
    return trunk[-1][0].out_features if k > 0 else in_dim
