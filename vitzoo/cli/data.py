"""``vitzoo data check``: is a dataset, as downloaded, ready to train? ``vitzoo data prepare``: a smaller copy.

Examples::

    vitzoo data check --layout ucf101 --root data/ucf101 --fold 1 --report ucf101.json
    vitzoo data check --layout kinetics --root data/kinetics400 --write-list data/kinetics400/lists
    vitzoo data check --config configs/videomae_vit_base_ucf101.yaml --split val
    vitzoo data prepare --root data/kinetics400 --out data/kinetics400_256 --short-side 256 --workers 8
    vitzoo data prepare --root data/ucf101 --out data/ucf101_frames --rawframes --layout ucf101 --fold 1

Every listed video is opened and the frames of one clip decoded (:mod:`vitzoo.data.check`), in ``--workers``
processes. One summary line per split is printed; ``--report`` writes the JSON report, ``--write-list`` the usable
videos as ``list``-layout files (``--set data.layout=list --set data.train=<DIR>/train.txt ...`` then trains on
them without a new check). Exit 0 when every split has a usable video, 2 (one line) when one has none or the
annotation files are wrong. ``prepare`` re-encodes every video under a root to a short side (or extracts JPEG
frames) into another folder, keeping the layout and copying the annotations (:mod:`vitzoo.data.prepare`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vitzoo.cli.train import add_config_args

EXIT_CANNOT_TRAIN = 2


def add_commands(sub) -> None:
    """Add ``data`` (with its sub-command ``check``) to the ``vitzoo`` sub-command parsers ``sub``."""
    data = sub.add_parser(
        "data",
        help="check a dataset as downloaded (vitzoo data check)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="open every listed video; report what is usable", description=cmd_data_check.__doc__
    )
    add_config_args(check)
    check._option_string_actions["--config"].required = False  # --config or --layout/--root
    check.add_argument("--layout", help="ucf101, hmdb51, kinetics, ssv2, rawframes, list or folders")
    check.add_argument("--root", help="the dataset root (data.root)")
    check.add_argument("--fold", type=int, help="the official split (ucf101, hmdb51: 1, 2 or 3)")
    check.add_argument("--annotations", help="folder of the annotation files (default: the layout's, under root)")
    check.add_argument("--split", choices=("train", "val"), help="check one split (default: both)")
    check.add_argument("--num-frames", type=int, default=16, help="frames per clip without --config (default 16)")
    check.add_argument("--backend", choices=("decord", "pyav"), help="decoder (default: the recipe's, else decord)")
    check.add_argument("--report", help="write the JSON report here")
    check.add_argument("--write-list", metavar="DIR", help="write train.txt, val.txt, classes.txt of the usable videos")
    check.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes (0: none)")
    check.set_defaults(func=cmd_data_check)

    prep = actions.add_parser(
        "prepare", help="re-encode to a short side, or extract frames (resumable)", description=cmd_data_prepare.__doc__
    )
    prep.add_argument("--root", required=True, help="the dataset as downloaded")
    prep.add_argument("--out", required=True, help="the prepared copy (same relative paths)")
    prep.add_argument("--short-side", type=int, default=256, help="short side in pixels (default 256)")
    prep.add_argument("--fps", type=float, help="a fixed frame rate (default: keep the videos' timing)")
    prep.add_argument("--rawframes", action="store_true", help="extract JPEG frames (<video>/img_00001.jpg ...)")
    prep.add_argument("--layout", help="with --rawframes: write the layout's splits as rawframes lists in --out")
    prep.add_argument("--fold", type=int, default=1, help="with --layout: the official split (default 1)")
    prep.add_argument("--crf", type=int, default=23, help="encoder quality (lower: better; default 23)")
    prep.add_argument("--report", help="write the JSON report here")
    prep.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes (0: none)")
    prep.set_defaults(func=cmd_data_prepare)


def _spec_and_frames(args: argparse.Namespace):
    """The ``DataSpec`` and clip length of the command line (a recipe, or --layout / --root)."""
    from vitzoo.data.recipe import DataSpec
    from vitzoo.schema import ConfigError

    if args.config:
        import vitzoo.ssl  # noqa: F401  (registers the self-supervised tasks a recipe may name)
        from vitzoo.api import model_config
        from vitzoo.train.recipe import load_run_config

        run = load_run_config(args.config, args.overrides)
        spec, num_frames = run.data, model_config(run.model.name, **run.model.options).num_frames
    else:
        if not args.layout or not args.root:
            raise ConfigError("give --config RECIPE, or --layout and --root")
        if args.overrides:
            raise ConfigError("--set changes a recipe: give --config RECIPE with it")
        spec, num_frames = DataSpec(root=args.root, layout=args.layout), args.num_frames
    for key in ("layout", "root", "fold", "annotations", "backend"):
        value = getattr(args, key)
        if value is not None:
            setattr(spec, key, value)
    spec.validate()
    return spec, num_frames


def _read(spec, split: str):
    """One split as a :class:`~vitzoo.data.layouts.LayoutSplit` (``list`` / ``folders`` too)."""
    from vitzoo.data.layouts import LAYOUTS, LayoutSplit
    from vitzoo.data.recipe import read_layout_split, split_dataset
    from vitzoo.data.sampling import SegmentSampler

    if spec.layout in LAYOUTS:
        return read_layout_split(spec, split)
    dataset = split_dataset(
        spec, spec.train if split == "train" else spec.val, sampler=SegmentSampler(num_segments=1), transform=None
    )
    present = [(p, label) for p, label in dataset.samples if p.exists()]
    missing = [os.path.relpath(p, spec.root) for p, _ in dataset.samples if not p.exists()]
    return LayoutSplit(present, dataset.classes, missing)


def cmd_data_check(args: argparse.Namespace) -> int:
    """Open every listed video of a dataset (a recipe's, or --layout / --root) and decode one clip of each; print
    per split the videos listed, usable, missing, undecodable and shorter than a clip, and the spread of size, frame
    rate and duration."""
    import sys

    from vitzoo.data.check import cannot_train, check_split, write_lists, write_report
    from vitzoo.data.recipe import frame_sampler
    from vitzoo.schema import check_range

    check_range("--workers", args.workers, low=0)
    check_range("--num-frames", args.num_frames, low=1)
    spec, num_frames = _spec_and_frames(args)
    splits = [args.split] if args.split else ["train", *(["val"] if spec.val is not None else [])]
    sampler = frame_sampler(spec, num_frames, train=False)
    reports = {}
    for split in splits:
        found = _read(spec, split)
        reports[split] = check_split(
            found, Path(spec.root), sampler, backend=spec.backend, workers=args.workers, desc=split
        )
        print(reports[split].summary(split))
    if args.report:
        print(f"report: {write_report(reports, args.report)}")
    if args.write_list:
        written = write_lists(reports, Path(spec.root), args.write_list)
        print(f"lists: {', '.join(str(p) for p in written)}")
    why = cannot_train(reports)
    if why is not None:
        print(f"vitzoo data check: error: {why}", file=sys.stderr)
        return EXIT_CANNOT_TRAIN
    return 0


def _rawframes_lists(args: argparse.Namespace, out: Path) -> list[Path]:
    """``train.txt`` / ``val.txt`` (``<frame folder> <num_frames> <label>``) and ``classes.txt`` for the frame
    folders of ``--layout`` (read on the original root), written into ``out``."""
    from vitzoo.data.frames import FRAME_NAME
    from vitzoo.data.recipe import DataSpec
    from vitzoo.durable import write_text_atomic

    spec = DataSpec(root=args.root, layout=args.layout, fold=args.fold)
    spec.validate()
    written, classes = [], None
    for split in ("train", "val"):
        found = _read(spec, split)
        classes = found.classes
        lines = []
        for path, label in found.samples:
            rel = Path(os.path.relpath(path, args.root)).with_suffix("")
            count = len(list((out / rel).glob(FRAME_NAME.replace("{:05d}", "*"))))
            if count:
                lines.append(f"{rel.as_posix()} {count} {label}\n")
        written.append(write_text_atomic(out / f"{split}.txt", "".join(lines)))
    if classes is not None:
        written.append(write_text_atomic(out / "classes.txt", "".join(f"{c}\n" for c in classes)))
    return written


def cmd_data_prepare(args: argparse.Namespace) -> int:
    """Re-encode every video under --root to --short-side pixels (optionally --fps) into --out, same file names and
    containers, annotations copied; or, with --rawframes, extract JPEG frame folders (and, with --layout, the
    rawframes lists of the layout's splits). Resumable: finished files are skipped, every file is written under a
    temporary name and renamed when complete."""
    import dataclasses
    import json

    from vitzoo.data.prepare import PrepareOptions, prepare_dataset
    from vitzoo.durable import write_text_atomic
    from vitzoo.schema import ConfigError, check_range

    check_range("--short-side", args.short_side, low=2)
    check_range("--workers", args.workers, low=0)
    check_range("--fps", args.fps, low=0, low_open=True, optional=True)
    if args.layout and not args.rawframes:
        raise ConfigError("--layout is for --rawframes (re-encoded videos keep the layout: point data.root at --out)")
    options = PrepareOptions(short_side=args.short_side, fps=args.fps, rawframes=args.rawframes, crf=args.crf)
    report = prepare_dataset(args.root, args.out, options, workers=args.workers)
    print(report.summary())
    for rel, why in list(report.failed.items())[:5]:
        print(f"  failed: {rel}: {why}")
    if args.layout:
        print(f"lists: {', '.join(str(p) for p in _rawframes_lists(args, Path(args.out)))}")
    if args.report:
        path = write_text_atomic(args.report, json.dumps(dataclasses.asdict(report), indent=2) + "\n")
        print(f"report: {path}")
    return 0
