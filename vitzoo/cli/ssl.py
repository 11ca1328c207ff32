"""The self-supervised commands of ``vitzoo``: ``pretrain``, ``knn``, ``linear-probe``.

Examples::

    vitzoo pretrain --config configs/simclr_vivit_joint_micro_motion.yaml [--set train.epochs=2] [--resume [PATH]]
    torchrun --nproc_per_node=8 -m vitzoo.cli.main pretrain --config configs/simclr_vivit_fact_enc_base_kinetics400.yaml
    vitzoo knn --config configs/simclr_vivit_joint_micro_motion.yaml [--checkpoint runs/.../best.safetensors]
    vitzoo linear-probe --config configs/demo_motion_micro.yaml --random-init      # the random-init baseline

``knn`` and ``linear-probe`` evaluate a checkpoint's frozen features (a classifier's pooled pre-logit features)
on any recipe's data: the training split is the memory bank / probe training set, the validation split the
queries (see :mod:`vitzoo.ssl.evaluate`). Results are printed and written as JSON. Every argument (``--k``,
``--temperature``, ``--epochs``, ..., ``--out``) is checked before the features are extracted.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from vitzoo.cli.train import add_compile_arg, add_resume_arg, cmd_train
from vitzoo.errors import InputNotFoundError, OutputExistsError

log = logging.getLogger("vitzoo.cli")


def add_commands(sub, add_config_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``pretrain``, ``knn`` and ``linear-probe`` to the ``vitzoo`` sub-command parsers ``sub``."""
    pre = sub.add_parser(
        "pretrain",
        help="self-supervised pre-training for a recipe (simclr, supcon, byol, simsiam, vicreg, videomae, mae)",
        description=cmd_pretrain.__doc__,
    )  # fmt: skip
    add_config_args(pre)
    add_resume_arg(pre)
    add_compile_arg(pre)
    pre.set_defaults(func=cmd_pretrain)

    knn = sub.add_parser("knn", help="kNN accuracy of a checkpoint's frozen features", description=cmd_knn.__doc__)
    _add_encoder_args(knn, add_config_args)
    knn.add_argument("--k", type=int, default=200, help="neighbours (default 200, Wu et al. 2018)")
    knn.add_argument("--temperature", type=float, default=0.07, help="vote weights exp(s / T) (default 0.07)")
    knn.set_defaults(func=cmd_knn)

    probe = sub.add_parser(
        "linear-probe", help="linear probe on a checkpoint's frozen features", description=cmd_linear_probe.__doc__
    )
    _add_encoder_args(probe, add_config_args)
    probe.add_argument("--epochs", type=int, default=100, help="probe training epochs (default 100)")
    probe.add_argument("--lr", type=float, default=0.1, help="SGD learning rate, cosine decay (default 0.1)")
    probe.add_argument("--batch-size", type=int, default=256, help="probe batch size (default 256)")
    probe.add_argument("--weight-decay", type=float, default=0.0, help="probe weight decay (default 0)")
    probe.set_defaults(func=cmd_linear_probe)


def _add_encoder_args(parser: argparse.ArgumentParser, add_config_args) -> None:
    add_config_args(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", help="weights file (default: <output_dir>/checkpoints/best.safetensors)")
    which.add_argument("--random-init", action="store_true", help="the recipe's model at random initialisation")
    parser.add_argument("--out", help="JSON report (default: <output_dir>/eval/<checkpoint name>/<command>.json)")


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Self-supervised pre-training: ``vitzoo train`` for a recipe whose task is a self-supervised method (same
    --set, --resume, torchrun, metrics, plots and checkpoints)."""
    from vitzoo.ssl.tasks import SELF_SUPERVISED
    from vitzoo.train.config import ConfigError
    from vitzoo.train.recipe import load_run_config

    run = load_run_config(args.config, args.overrides)
    if run.task.name not in SELF_SUPERVISED:
        raise ConfigError(
            f"{args.config}: task {run.task.name!r} is not self-supervised (pretrain takes "
            f"{', '.join(SELF_SUPERVISED)}); use vitzoo train"
        )
    return cmd_train(args)


def _check_args(args: argparse.Namespace, **ranges: dict) -> None:
    """One line (:class:`~vitzoo.schema.ConfigError`) for an argument out of its range, and for an ``--out`` that is
    a directory: before any work, so nothing is extracted or left behind."""
    from vitzoo.schema import check_range

    for name, bounds in ranges.items():
        check_range(f"--{name.replace('_', '-')}", getattr(args, name), **bounds)
    if args.out is not None and Path(args.out).is_dir():
        raise OutputExistsError(f"--out {args.out} is a directory; give the path of the JSON report to write")


def _features(args: argparse.Namespace):
    """The recipe, the features of the encoder the arguments name, and the default report folder."""
    from vitzoo.ssl.evaluate import encoder, frozen_features
    from vitzoo.train.recipe import default_checkpoint, load_run_config

    run = load_run_config(args.config, args.overrides)
    if args.random_init:
        model, name = encoder(run, random_init=True), "random_init"
    else:
        path = Path(args.checkpoint) if args.checkpoint else default_checkpoint(run)
        if not path.is_file():
            raise InputNotFoundError(f"no checkpoint {path}")
        model, name = encoder(run, checkpoint=path), path.stem
    return frozen_features(run, model), Path(run.output_dir) / "eval" / name


def cmd_knn(args: argparse.Namespace) -> int:
    """Weighted kNN classification of the validation split by the training split, on frozen features."""
    from vitzoo.ssl.evaluate import knn, write_json

    _check_args(args, k={"low": 1}, temperature={"low": 0, "low_open": True})
    features, folder = _features(args)
    result = knn(features, k=args.k, temperature=args.temperature)
    path = write_json({"command": "knn", "config": args.config, **asdict(result)}, args.out or folder / "knn.json")
    print(
        f"kNN (k={result.k}, T={result.temperature:g}): top-1 {100 * result.top1:.2f}%  top-5 {100 * result.top5:.2f}%"
        f"  ({result.num_samples} queries, {len(features.train)} in memory); wrote {path}"
    )
    return 0


def cmd_linear_probe(args: argparse.Namespace) -> int:
    """A linear classifier trained on the training split's frozen features, scored on the validation split."""
    from vitzoo.ssl.evaluate import probe, write_json

    _check_args(
        args, epochs={"low": 1}, lr={"low": 0, "low_open": True}, batch_size={"low": 1}, weight_decay={"low": 0}
    )
    features, folder = _features(args)
    options = dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, weight_decay=args.weight_decay)
    result = probe(features, **options)
    record = {"command": "linear-probe", "config": args.config, "top1": result.top1, "train_top1": result.train_top1,
              "num_samples": len(features.val), **options}  # fmt: skip
    path = write_json(record, args.out or folder / "linear_probe.json")
    print(
        f"linear probe: top-1 {100 * result.top1:.2f}% (train {100 * result.train_top1:.2f}%, "
        f"{len(features.train)} training, {len(features.val)} validation samples); wrote {path}"
    )
    return 0
