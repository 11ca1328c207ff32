"""Weight files and the small named fix-ups that adapt checkpoints between architectures."""

from vitzoo.checkpoints import swin_2d_to_3d  # noqa: F401  (registers the Video Swin's pretrained-weight adapter)
from vitzoo.checkpoints.inflate import (
    infer_vit_layout,
    inflate_patch_embed,
    spatial_pos_embed,
    tile_temporal_pos_embed,
)
from vitzoo.checkpoints.load import load_checked, load_pretrained
from vitzoo.checkpoints.source import Checkpoint, read_checkpoint
from vitzoo.checkpoints.vit_to_video import InitReport, vit_to_video
from vitzoo.layers.pos_embed import resample_pos_embed, resample_temporal_pos_embed

__all__ = [
    "Checkpoint",
    "InitReport",
    "infer_vit_layout",
    "inflate_patch_embed",
    "load_checked",
    "load_pretrained",
    "read_checkpoint",
    "resample_pos_embed",
    "resample_temporal_pos_embed",
    "spatial_pos_embed",
    "tile_temporal_pos_embed",
    "vit_to_video",
]
