"""vitzoo: image and video Vision Transformers in PyTorch.

>>> import vitzoo
>>> model = vitzoo.create("vivit_fact_enc_nano_8x2", num_classes=4)
"""

from vitzoo import convert
from vitzoo._version import __version__ as __version__  # re-exported
from vitzoo.api import create, list_models, load, model_config, push_to_hub, save, save_pretrained
from vitzoo.export import export

__all__ = [
    "convert",
    "create",
    "export",
    "list_models",
    "load",
    "model_config",
    "predict",
    "push_to_hub",
    "save",
    "save_pretrained",
]


def __getattr__(name: str):
    """``vitzoo.predict`` (:func:`vitzoo.inference.predict`), imported on first use: it pulls in the data and
    evaluation code, which ``import vitzoo`` does not need."""
    if name == "predict":
        from vitzoo.inference import predict

        return predict
    raise AttributeError(f"module 'vitzoo' has no attribute {name!r}")
