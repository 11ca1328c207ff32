"""Fresh motion videos for the predict tests: one clip per direction, and a long video stitched from directions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers import REPO_ROOT
from vitzoo.data.synthetic import motion_clip, write_video

DIRECTIONS = ("left", "right", "up", "down")
FPS = 25.0
MOTION_WEIGHTS = REPO_ROOT / "weights" / "vivit_joint_micro_4x2_motion.safetensors"  # the fastest shipped motion model


def write_direction_clips(folder: Path, *, seed: int = 1234) -> dict[Path, str]:
    """One 16-frame 64 px clip per direction (generators the training set never used) -> {path: direction}."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, direction in enumerate(DIRECTIONS):
        path = folder / f"{direction}.mp4"
        write_video(path, motion_clip(direction, np.random.default_rng([seed, i])), FPS)
        truth[path] = direction
    return truth


def write_stitched_video(path: Path, directions: tuple[str, ...], *, frames_each: int = 48, seed: int = 7) -> Path:
    """One video of ``frames_each`` frames per direction, in order (segment ``i`` spans
    ``[i, i + 1) * frames_each / FPS`` seconds)."""
    rng = np.random.default_rng(seed)
    frames = np.concatenate([motion_clip(d, rng, num_frames=frames_each) for d in directions])
    return write_video(path, frames, FPS)
