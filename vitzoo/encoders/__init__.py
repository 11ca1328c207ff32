"""Video encoders: tokens ``(B, T, N, D)`` in, features ``(B, D)`` out. Importing registers them."""

from vitzoo.encoders.base import VideoEncoder
from vitzoo.encoders.divided import DividedSpaceTimeEncoder
from vitzoo.encoders.factorised_dot_product import FactorisedDotProductEncoder
from vitzoo.encoders.factorised_encoder import FactorisedEncoder
from vitzoo.encoders.factorised_self_attention import FactorisedSelfAttentionEncoder
from vitzoo.encoders.frame_average import FrameAverageEncoder
from vitzoo.encoders.joint import JointEncoder

__all__ = [
    "DividedSpaceTimeEncoder",
    "FactorisedDotProductEncoder",
    "FactorisedEncoder",
    "FactorisedSelfAttentionEncoder",
    "FrameAverageEncoder",
    "JointEncoder",
    "VideoEncoder",
]
