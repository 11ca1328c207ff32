"""Video transformers: ``TubeletEmbed -> encoder -> pooling -> head``. The config's ``encoder`` picks the variant.

This family's stem is the tubelet embedding (a strided ``Conv3d``): a clip ``(B, C, T, H, W)`` becomes the token
grid ``(B, T/t, H/p, W/p, D)``, which every encoder keeps as a grid (no token count is turned back into a
grid). The encoder returns its final tokens; pooling and the head are :class:`~vitzoo.models.base.ZooModel`'s.
"""

from __future__ import annotations

import torch
from torch import nn

from vitzoo.config import VideoConfig, pair
from vitzoo.flops import Flops, embed_flops, head_flops
from vitzoo.layers import TubeletEmbed
from vitzoo.layers.groups import stack_matcher
from vitzoo.models.base import Tap, ZooModel, linear_head
from vitzoo.registry import ENCODERS, family


@family(VideoConfig)
class VideoTransformer(ZooModel):
    """A video classifier on clips ``(B, C, T, H, W)`` (torchvision's video layout).

    ``forward_features`` returns the encoder's final tokens ``(B, P + L, D)``; ``forward_head`` pools and classifies.
    """

    modality = "video"

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        self.patch_embed = TubeletEmbed(
            tubelet_size=cfg.tubelet_size, patch_size=cfg.patch_size, in_chans=cfg.in_chans, embed_dim=cfg.embed_dim
        )
        self.encoder = ENCODERS.get(cfg.encoder)(cfg)
        self.num_features = self.encoder.num_features
        self.num_prefix_tokens = self.encoder.num_prefix_tokens
        self.global_pool = self.encoder.global_pool
        fc_eps = cfg.norm_eps if cfg.fc_norm_eps is None else cfg.fc_norm_eps
        self.fc_norm = nn.LayerNorm(self.num_features, eps=fc_eps) if cfg.use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = linear_head(self.num_features, cfg.num_classes)
        self.apply_token_merging()

    def size_multiple(self) -> tuple[int, int, int]:
        c = self.cfg
        return (c.tubelet_size, c.patch_size, c.patch_size)

    @torch.no_grad()
    def resample(self, *, num_frames: int | None = None, img_size: int | tuple[int, int] | None = None) -> None:
        """Permanently adapt the positional embeddings to a new clip length and/or frame size."""
        cfg = self.cfg
        num_frames = cfg.num_frames if num_frames is None else num_frames
        img_size = cfg.img_size if img_size is None else img_size
        (h, w), t, p = pair(img_size), cfg.tubelet_size, cfg.patch_size
        if num_frames < 1 or num_frames % t or h % p or w % p:
            raise ValueError(f"{num_frames} frames at {h}x{w} px do not divide into {t}x{p}x{p} tubelets")
        self.encoder.resample((num_frames // t, h // p, w // p))
        cfg.num_frames, cfg.img_size = num_frames, img_size

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``(B, C, T, H, W)`` -> the encoder's final tokens ``(B, P + L, D)``.

        With token merging on (``token_merging`` / :meth:`set_token_merging`), the joint encoder returns
        ``(B, P + L', D)``: the prefix tokens, then ``L'`` merged tokens that form no grid (unmerged ones in their
        order, then those merged into), each standing for :attr:`token_sizes` tubelets. The factorised encoder and
        VTN merge within each frame of the spatial stage only, so their final (temporal) tokens are unchanged.
        TimeSformer and ViViT Models 3 and 4 merge the same positions in every frame: ``(B, P + T*N', D)``,
        time-major, no longer a spatial grid.
        """
        self.check_input(x)
        return self.encoder(self.patch_embed(x))  # (B, T', h, w, D) -> (B, P + L, D)

    def forward_visible(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Clips ``(B, C, T, H, W)`` and a mask ``(B, L)`` over the token grid (``True`` = masked, the same count per
        sample) -> the encoder's final tokens on the visible part, ``(B, P + L_v, D)`` (token dropping; see
        :mod:`vitzoo.data.masking`)."""
        self.check_input(x)
        self.check_not_merging("forward_visible (token dropping)")
        return self.encoder.forward_visible(self.patch_embed(x), mask)  # (B, T', h, w, D) -> (B, P + L_v, D)

    def apply_token_merging(self) -> None:
        self.encoder.set_token_merging(self.cfg.token_merging, self.cfg.token_merging_prop_attn)

    @property
    def merging(self) -> bool:
        return self.encoder.merging

    @property
    def token_sizes(self) -> torch.Tensor | None:
        return self.encoder.token_sizes

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups: the tubelet stem with the first stack's tables, then each block of the encoder's
        stacks in the order they run (see :mod:`vitzoo.layers.groups`); norms and head last."""
        stacks = [(f"encoder.{prefix}", depth) for prefix, depth in self.encoder.block_stacks()]
        return stack_matcher(r"^patch_embed", stacks)

    @property
    def num_taps(self) -> int:
        return self.encoder.num_taps

    @property
    def feature_info(self) -> list[dict]:
        return self.encoder.feature_info(prefix="encoder.")

    def prune_taps(self, keep: int) -> None:
        self.encoder.prune_taps(keep)

    def forward_taps(
        self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None
    ) -> tuple[torch.Tensor, list[Tap]]:
        return self.encoder.forward_taps(self.patch_embed(x), take, norm=norm, stop_at=stop_at)

    # ----------------------------------------------------------------------------------- facts
    @classmethod
    def num_tokens(cls, cfg: VideoConfig) -> int:
        t, h, w = cfg.grid_thw
        return t * h * w

    @classmethod
    def flops(cls, cfg: VideoConfig) -> Flops:
        """Tubelet embedding + the encoder's own formula + head."""
        pixels = cfg.in_chans * cfg.tubelet_size * cfg.patch_size**2
        embed = embed_flops(tokens=cls.num_tokens(cfg), dim=cfg.embed_dim, pixels_per_token=pixels)
        encoder = ENCODERS.get(cfg.encoder).flops(cfg)
        return embed + encoder + head_flops(num_features=cfg.embed_dim, num_classes=cfg.num_classes)

    @classmethod
    def architecture(cls, cfg: VideoConfig) -> str:
        return cfg.encoder
