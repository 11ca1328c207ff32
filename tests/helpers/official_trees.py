"""Small fakes of the official dataset trees (UCF101, HMDB51, Kinetics, SSv2, rawframes), written byte for byte in
the official annotation formats, with real tiny video files, and the ground truth each test checks against.

Every builder returns a :class:`Tree`: ``expected[(fold, split)]`` maps each video's path (relative to the root) to
its label, computed from how the tree was made (the class a video was filed under), not by the code under test.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.io import encode_jpeg

from vitzoo.data import index_coded_frames, make_test_video

FRAMES, SIZE, FPS = 24, 32, 12


@dataclass
class Tree:
    """A fabricated dataset root and what it must read as."""

    root: Path
    classes: list[str]
    expected: dict[tuple[int, str], dict[str, int]]  # (fold, split) -> {relative path: label}
    missing: dict[str, list[str]] = field(default_factory=dict)  # split -> relative paths listed but absent
    corrupt: dict[str, list[str]] = field(default_factory=dict)  # split -> relative paths that do not decode


def _write_xvid_avi(path: Path) -> None:
    """MPEG-4 Part 2 tagged ``XVID`` in avi: how UCF101 and HMDB51 are encoded."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.codec_context.codec_tag = "XVID"
        stream.options = {"qscale": "2"}
        for frame in index_coded_frames(FRAMES, SIZE, SIZE):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def video(cache: Path, suffix: str) -> Path:
    """One index-coded test video per container (written once per ``cache`` folder), encoded as the dataset that
    uses it is: xvid in avi (UCF101, HMDB51), H.264 in mp4 (Kinetics), VP9 in webm (SSv2)."""
    path = cache / f"source{suffix}"
    if not path.is_file():
        if suffix == ".avi":
            _write_xvid_avi(path)
        else:
            make_test_video(path, FRAMES, SIZE, SIZE, FPS)
    return path


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


UCF_CLASSES = ["ApplyEyeMakeup", "Archery", "HandstandPushups"]
UCF_FILE_NAMES = {"HandstandPushups": "HandStandPushups"}  # the real archive's spelling inside file names
UCF_TEST_GROUP = {1: 1, 2: 8, 3: 15}  # group in the test list of each fold (the official 7-group blocks)


def ucf101(root: Path, cache: Path) -> Tree:
    """``UCF-101/<Class>/v_<Class>_gXX_c01.avi`` for groups 1, 8, 15, 22 and ``ucfTrainTestlist`` (CRLF)."""
    src = video(cache, ".avi")
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes(b"".join(f"{i} {c}\r\n".encode() for i, c in enumerate(UCF_CLASSES, 1)))
    expected: dict[tuple[int, str], dict[str, int]] = {}
    for fold, test_group in UCF_TEST_GROUP.items():
        train_lines, test_lines = [], []
        for label, name in enumerate(UCF_CLASSES):
            for group in (1, 8, 15, 22):
                rel = f"{name}/v_{UCF_FILE_NAMES.get(name, name)}_g{group:02d}_c01.avi"
                _place(src, root / "UCF-101" / rel)
                split = "val" if group == test_group else "train"
                expected.setdefault((fold, split), {})[f"UCF-101/{rel}"] = label
                if split == "train":
                    train_lines.append(f"{rel} {label + 1}\r\n")
                else:
                    test_lines.append(f"{rel}\r\n")  # the official test lists carry no label
        (lists / f"trainlist0{fold}.txt").write_bytes("".join(train_lines).encode())
        (lists / f"testlist0{fold}.txt").write_bytes("".join(test_lines).encode())
    return Tree(root, UCF_CLASSES, expected)


HMDB_CLASSES = ["brush_hair", "cartwheel", "wave"]


def hmdb51(root: Path, cache: Path) -> Tree:
    """``hmdb51_org/<class>/*.avi`` and ``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`` (codes 0/1/2,
    the official trailing space); one video per class is marked 0 (unused) in every fold."""
    src = video(cache, ".avi")
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    expected: dict[tuple[int, str], dict[str, int]] = {}
    for label, name in enumerate(HMDB_CLASSES):
        names = [f"April_09_{name}_u_nm_np1_ba_goo_{i}.avi" for i in range(4)]
        for v in names:
            _place(src, root / "hmdb51_org" / name / v)
        for fold in (1, 2, 3):
            codes = ["1", "1", "1", "0"]
            codes[fold - 1] = "2"  # a different test video in each fold; the last one is never used
            lines = []
            for v, code in zip(names, codes, strict=True):
                lines.append(f"{v} {code} \n")
                if code != "0":
                    split = "train" if code == "1" else "val"
                    expected.setdefault((fold, split), {})[f"hmdb51_org/{name}/{v}"] = label
            (splits / f"{name}_test_split{fold}.txt").write_bytes("".join(lines).encode())
    return Tree(root, HMDB_CLASSES, expected)


KINETICS_CLASSES = ["abseiling", "air drumming", "passing American football (in game)"]


def kinetics(root: Path, cache: Path) -> Tree:
    """``annotations/{train,val}.csv`` (with ``is_cc``), training videos in per-label folders, validation videos
    flat; one validation row's video is missing and one training video is corrupt."""
    src = video(cache, ".mp4")
    ann = root / "annotations"
    ann.mkdir(parents=True)
    expected: dict[tuple[int, str], dict[str, int]] = {}
    missing: dict[str, list[str]] = {"train": [], "val": []}
    corrupt: dict[str, list[str]] = {"train": [], "val": []}
    for split in ("train", "val"):
        rows = ["label,youtube_id,time_start,time_end,split,is_cc"]
        n = 0
        for label, name in enumerate(KINETICS_CLASSES):
            for k in range(2 if split == "val" else 3):
                yid = f"{split[0]}-x_{label}{k}Ab9"  # YouTube ids contain '-' and '_'
                start = 10 * k + 1
                stem = f"{yid}_{start:06d}_{start + 10:06d}"
                shown = f'"{name}"' if "(" in name else name
                rows.append(f"{shown},{yid},{start},{start + 10},{'validate' if split == 'val' else 'train'},0")
                rel = f"train/{name}/{stem}.mp4" if split == "train" else f"val/{stem}.mp4"
                n += 1
                if split == "val" and n == 2:
                    missing[split].append(f"val/{stem}")  # gone from YouTube: never downloaded
                    continue
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                if split == "train" and n == 4:
                    (root / rel).write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))  # a broken download
                    corrupt[split].append(rel)
                else:
                    _place(src, root / rel)
                expected.setdefault((1, split), {})[rel] = label
        (ann / f"{split}.csv").write_bytes(("\n".join(rows) + "\n").encode())
    return Tree(root, KINETICS_CLASSES, expected, missing, corrupt)


SSV2_LABELS = {
    "Holding something next to something": "0",
    "Pushing something from left to right": "1",
    "Putting something on a surface": "2",
}
SSV2_TEMPLATES = [
    "Holding [something] next to [something]",
    "Pushing [something] from left to right",
    "Putting [something] on a surface",
]


def ssv2(root: Path, cache: Path, *, long_names: bool = False) -> Tree:
    """``20bn-something-something-v2/<id>.webm`` and ``labels/{labels,train,validation}.json`` (or the
    ``something-something-v2-*.json`` names)."""
    src = video(cache, ".webm")
    labels = root / "labels"
    labels.mkdir(parents=True)
    names = {
        k: (f"something-something-v2-{k}.json" if long_names else f"{k}.json")
        for k in ("labels", "train", "validation")
    }
    (labels / names["labels"]).write_text(json.dumps(SSV2_LABELS, indent=4))
    expected: dict[tuple[int, str], dict[str, int]] = {}
    vid = 1000
    for split, file in (("train", "train"), ("val", "validation")):
        entries = []
        for label, template in enumerate(SSV2_TEMPLATES):
            for _ in range(2):
                vid += 1
                entries.append(
                    {
                        "id": str(vid),
                        "label": template.replace("[something]", "a cup"),
                        "template": template,
                        "placeholders": ["a cup"],
                    }
                )
                _place(src, root / "20bn-something-something-v2" / f"{vid}.webm")
                expected.setdefault((1, split), {})[f"20bn-something-something-v2/{vid}.webm"] = label
        (labels / names[file]).write_text(json.dumps(entries))
    classes = sorted(SSV2_LABELS, key=lambda k: int(SSV2_LABELS[k]))
    return Tree(root, classes, expected)


def rawframes(root: Path, *, counts=(20, 9, 14)) -> Tree:
    """``rawframes/vid<i>/img_00001.jpg ...`` (index-coded frames) and ``train.txt`` / ``val.txt`` lines
    ``rawframes/vid<i> <num_frames> <label>``."""
    expected: dict[tuple[int, str], dict[str, int]] = {}
    for split in ("train", "val"):
        lines = []
        for i, count in enumerate(counts):
            rel = f"rawframes/{split}_vid{i}"
            folder = root / rel
            folder.mkdir(parents=True)
            for t, frame in enumerate(index_coded_frames(count, SIZE, SIZE)):
                data = encode_jpeg(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1), quality=95)
                (folder / f"img_{t + 1:05d}.jpg").write_bytes(data.numpy().tobytes())
            lines.append(f"{rel} {count} {i % 2}\n")
            expected.setdefault((1, split), {})[rel] = i % 2
        (root / f"{split}.txt").write_text("".join(lines))
    return Tree(root, ["0", "1"], expected)
