"""Building blocks shared by every model: embeddings, attention, MLP, transformer block; MViT's pooling layers."""

from vitzoo.layers.attention import Attention
from vitzoo.layers.block import Block, make_blocks, run_blocks
from vitzoo.layers.conv_stem import ConvStem
from vitzoo.layers.embed import PatchEmbed, TubeletEmbed
from vitzoo.layers.mlp import Mlp, make_activation
from vitzoo.layers.multiscale_block import MultiscaleBlock
from vitzoo.layers.pooling_attention import PoolingAttention

__all__ = [
    "Attention",
    "Block",
    "ConvStem",
    "Mlp",
    "MultiscaleBlock",
    "PatchEmbed",
    "PoolingAttention",
    "TubeletEmbed",
    "make_activation",
    "make_blocks",
    "run_blocks",
]
