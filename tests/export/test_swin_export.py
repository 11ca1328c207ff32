"""Export of a Video Swin whose windows are padded, clipped and shifted in every stage (the registry-wide export
tests cover the registered nano models at their own, unpadded size)."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from vitzoo.export import onnx_max_abs_diff, program_max_abs_diff

TOL = 1e-4


def _padded_model():
    torch.manual_seed(0)
    # tokens (3, 11, 11) in windows (2, 4, 4): padded to (4, 12, 12); stage 2 (3, 6, 6); shifted on every axis
    return vitzoo.create("video_swin_nano_4x2", num_frames=6, img_size=44, num_classes=5).eval()


@pytest.mark.parametrize("exporter", ["torchscript", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_onnx_of_padded_windows_matches_pytorch(tmp_path, exporter):
    model = _padded_model()
    path = vitzoo.export(model, tmp_path / "swin.onnx", exporter=exporter)
    for batch in (3, 1):  # exported with batch 2
        assert onnx_max_abs_diff(model, path, batch_size=batch) <= TOL


@pytest.mark.slow
def test_torch_export_of_padded_windows_round_trips(tmp_path):
    model = _padded_model()
    path = vitzoo.export(model, tmp_path / "swin.pt2")
    for batch in (3, 1):
        assert program_max_abs_diff(model, path, batch_size=batch) <= TOL
