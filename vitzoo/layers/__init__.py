"""Building blocks shared by every model: embeddings, attention, MLP, transformer block."""

from vitzoo.layers.attention import Attention
from vitzoo.layers.block import Block, make_blocks, run_blocks
from vitzoo.layers.embed import PatchEmbed, TubeletEmbed
from vitzoo.layers.mlp import Mlp, make_activation

__all__ = ["Attention", "Block", "Mlp", "PatchEmbed", "TubeletEmbed", "make_activation", "make_blocks", "run_blocks"]
