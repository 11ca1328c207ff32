"""Self-supervised and contrastive learning for every vitzoo encoder, image or video.

* :mod:`vitzoo.ssl.losses`: NT-Xent (multi-view), SupCon, contrastive, triplet, negative cosine, VICReg;
* :mod:`vitzoo.ssl.heads`: projection heads and predictors of SimCLR v1/v2, BYOL, SimSiam, VICReg;
* :mod:`vitzoo.ssl.views`, :mod:`vitzoo.ssl.temporal`: augmented views; CVRL's clip sampler;
* :mod:`vitzoo.ssl.gather`: all-gather with gradients for negatives across processes;
* :mod:`vitzoo.ssl.methods`: SimCLR / CVRL, SupCon, BYOL, SimSiam, VICReg as training tasks;
* :mod:`vitzoo.ssl.knn`, :mod:`vitzoo.ssl.linear_probe`: evaluation of frozen representations;
* :mod:`vitzoo.ssl.tasks`: the methods as recipe tasks (``task: {name: simclr, options: ...}``, views and kNN
  validation sets from :mod:`vitzoo.ssl.data`), trained by ``vitzoo pretrain``; :mod:`vitzoo.ssl.distill`:
  SimCLR v2 distillation (``task: {name: distill}``); :mod:`vitzoo.ssl.evaluate`: ``vitzoo knn`` /
  ``vitzoo linear-probe``.

>>> import vitzoo
>>> from vitzoo.ssl import build_method
>>> task = build_method("byol", vitzoo.create("vivit_fact_enc_nano_8x2", num_classes=0), proj_hidden_dim=256)
"""

from vitzoo.ssl import distill, tasks  # noqa: F401  (register the recipe tasks)
from vitzoo.ssl.features import extract_features
from vitzoo.ssl.knn import KNNResult, evaluate_knn, knn_accuracy, knn_scores
from vitzoo.ssl.linear_probe import LinearProbeResult, evaluate_linear_probe
from vitzoo.ssl.methods import METHODS, build_method, method_config
from vitzoo.ssl.temporal import CVRLSampler, linear_decreasing_gap
from vitzoo.ssl.views import ImageViews, byol_augment, cvrl_augment, simclr_augment, ssl_augment

__all__ = [
    "METHODS",
    "CVRLSampler",
    "ImageViews",
    "KNNResult",
    "LinearProbeResult",
    "build_method",
    "byol_augment",
    "cvrl_augment",
    "evaluate_knn",
    "evaluate_linear_probe",
    "extract_features",
    "knn_accuracy",
    "knn_scores",
    "linear_decreasing_gap",
    "method_config",
    "simclr_augment",
    "ssl_augment",
]
