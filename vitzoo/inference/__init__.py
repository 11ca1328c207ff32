"""``vitzoo predict``: the classes of videos and images, with a timeline for long videos (see docs/predict.md)."""

from vitzoo.inference.records import Label, Prediction, PredictStats, Segment, Window
from vitzoo.inference.run import iter_predictions, predict
from vitzoo.inference.source import PredictModel, open_model

__all__ = [
    "Label",
    "PredictModel",
    "PredictStats",
    "Prediction",
    "Segment",
    "Window",
    "iter_predictions",
    "open_model",
    "predict",
]
