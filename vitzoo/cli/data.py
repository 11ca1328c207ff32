"""``vitzoo data check``: is a dataset, as downloaded, ready to train?

Examples::

    vitzoo data check --layout ucf101 --root data/ucf101 --fold 1 --report ucf101.json
    vitzoo data check --layout kinetics --root data/kinetics400 --write-list data/kinetics400/lists
    vitzoo data check --config configs/videomae_fine_tune_ucf101.yaml --split val

Every listed video is opened and the frames of one clip decoded (:mod:`vitzoo.data.check`), in ``--workers``
processes. One summary line per split is printed; ``--report`` writes the JSON report, ``--write-list`` the usable
videos as ``list``-layout files (``--set data.layout=list --set data.train=<DIR>/train.txt ...`` then trains on
them without a new check). Exit 0 when every split has a usable video, 2 (one line) when one has none or the
annotation files are wrong.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vitzoo.cli.train import add_config_args

EXIT_CANNOT_TRAIN = 2


def add_commands(sub) -> None:
    """Add ``data`` (with its sub-command ``check``) to the ``vitzoo`` sub-command parsers ``sub``."""
    data = sub.add_parser("data", help="check a dataset as downloaded (vitzoo data check)", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="open every listed video; report what is usable",
                               description=cmd_data_check.__doc__)
    add_config_args(check)
    check._option_string_actions["--config"].required = False  # --config or --layout/--root
    check.add_argument("--layout", help="ucf101, hmdb51, kinetics, ssv2, rawframes, list or folders")
    check.add_argument("--root", help="the dataset root (data.root)")
    check.add_argument("--fold", type=int, help="the official split (ucf101, hmdb51: 1, 2 or 3)")
    check.add_argument("--annotations", help="folder of the annotation files (default: the layout's, under root)")
    check.add_argument("--split", choices=("train", "val"), help="check one split (default: both)")
    check.add_argument("--num-frames", type=int, default=16, help="frames per clip without --config (default 16)")
    check.add_argument("--report", help="write the JSON report here")
    check.add_argument("--write-list", metavar="DIR", help="write train.txt, val.txt, classes.txt of the usable videos")
    check.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes (0: none)")
    check.set_defaults(func=cmd_data_check)


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
        spec, num_frames = DataSpec(root=args.root, layout=args.layout), args.num_frames
    for key in ("layout", "root", "fold", "annotations"):
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
    dataset = split_dataset(spec, spec.train if split == "train" else spec.val,
                            sampler=SegmentSampler(num_segments=1), transform=None)
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

    spec, num_frames = _spec_and_frames(args)
    splits = [args.split] if args.split else ["train", *(["val"] if spec.val is not None else [])]
    sampler = frame_sampler(spec, num_frames, train=False)
    reports = {}
    for split in splits:
        found = _read(spec, split)
        reports[split] = check_split(found, Path(spec.root), sampler, workers=args.workers, desc=split)
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
