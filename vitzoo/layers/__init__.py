"""Building blocks shared by every model: embeddings, attention, MLP, transformer block; MViT's pooling layers;
Swin's window attention, block and patch merging."""

from vitzoo.layers.attention import Attention
from vitzoo.layers.block import Block, make_blocks, run_blocks
from vitzoo.layers.conv_stem import ConvStem
from vitzoo.layers.embed import PatchEmbed, TubeletEmbed
from vitzoo.layers.mlp import Mlp, make_activation
from vitzoo.layers.multiscale_block import MultiscaleBlock
from vitzoo.layers.patch_merging import PatchMerging
from vitzoo.layers.pooling_attention import PoolingAttention
from vitzoo.layers.swin_block import SwinBlock
from vitzoo.layers.window_attention import WindowAttention

__all__ = [
    "Attention",
    "Block",
    "ConvStem",
    "Mlp",
    "MultiscaleBlock",
    "PatchEmbed",
    "PatchMerging",
    "PoolingAttention",
    "SwinBlock",
    "TubeletEmbed",
    "WindowAttention",
    "make_activation",
    "make_blocks",
    "run_blocks",
]
