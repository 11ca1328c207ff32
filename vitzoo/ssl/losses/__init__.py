"""Self-supervised and metric-learning losses, one per file, each with its formula and paper.

All run in float32 (or float64) whatever the autocast (:mod:`vitzoo.ssl.losses.precision`). Multi-view
losses take embeddings ``(B, V, D)``: ``V`` views of each of ``B`` samples.
"""

from vitzoo.ssl.losses.contrastive import ContrastiveLoss
from vitzoo.ssl.losses.distill import DistillationLoss
from vitzoo.ssl.losses.negative_cosine import NegativeCosineSimilarity
from vitzoo.ssl.losses.ntxent import NTXentLoss
from vitzoo.ssl.losses.supcon import SupConLoss
from vitzoo.ssl.losses.triplet import (
    MINING,
    TripletLoss,
    batch_all_triplets,
    batch_hard_triplets,
    semi_hard_triplets,
)
from vitzoo.ssl.losses.vicreg import VICRegLoss, covariance_term, variance_term

__all__ = [
    "MINING",
    "ContrastiveLoss",
    "DistillationLoss",
    "NTXentLoss",
    "NegativeCosineSimilarity",
    "SupConLoss",
    "TripletLoss",
    "VICRegLoss",
    "batch_all_triplets",
    "batch_hard_triplets",
    "covariance_term",
    "semi_hard_triplets",
    "variance_term",
]
