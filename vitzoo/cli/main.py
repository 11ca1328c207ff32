"""The ``vitzoo`` command: ``train``, ``eval``, ``export``, ``models``, ``predict``, and the ``demo`` / ``bench``
entry points.

Examples::

    vitzoo train --config configs/vivit_fact_enc_nano_motion.yaml --set train.epochs=2
    vitzoo train --config configs/vivit_fact_enc_nano_motion.yaml --resume
    vitzoo train --config configs/vivit_fact_enc_nano_motion.yaml --resume runs/.../checkpoints/step_00000040.state.pt
    torchrun --nproc_per_node=4 -m vitzoo.cli.main train --config configs/vivit_fact_enc_base_kinetics400.yaml
    vitzoo eval --config configs/vivit_fact_enc_nano_motion.yaml [--checkpoint runs/.../best.safetensors]
    vitzoo train --config configs/vivit_fact_enc_nano_motion.yaml --compile       # torch.compile the model
    vitzoo export runs/.../best.safetensors --format onnx --out model.onnx --check
    vitzoo models 'vivit_*'
    vitzoo predict --checkpoint weights/vivit_joint_micro_4x2_motion.safetensors videos/ --out predictions.jsonl
    vitzoo pretrain --config configs/simclr_vivit_joint_micro_motion.yaml      # self-supervised (vitzoo.cli.ssl)
    vitzoo knn --config configs/simclr_vivit_joint_micro_motion.yaml
    vitzoo linear-probe --config configs/demo_motion_micro.yaml --random-init

Exit status and errors (one line on stderr, no traceback):

* 2: nothing was done: a mistake in the input (unknown config keys or model names, values out of range, missing
  or bad data files, a device this machine lacks, a class count that does not fit the data), a run directory
  in use by another run, a checkpoint that cannot be read or does not fit (the message names the file, why,
  and what to use instead), an export that cannot be written as asked;
* 1: training started and failed writing a checkpoint (a full disk): the message names the file, the cause
  and the earlier checkpoint left intact, to ``--resume`` from;
* 130: an interrupted training run (Ctrl-C, SIGTERM), after its checkpoint.

Every such error is a :class:`vitzoo.errors.VitzooError`; an argument argparse refuses is one line and status 2
too. Any other exception is a bug in vitzoo: its traceback is printed, then one line saying so and where to
report it, and the status is 1 (see docs/reliability.md).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from vitzoo.cli.data import add_commands as add_data_commands
from vitzoo.cli.predict import add_command as add_predict_command
from vitzoo.cli.ssl import add_commands as add_ssl_commands
from vitzoo.cli.train import EXIT_INTERRUPTED as EXIT_INTERRUPTED  # 130, defined beside cmd_train (returns it)
from vitzoo.cli.train import add_compile_arg, add_config_args, add_resume_arg, cmd_train
from vitzoo.errors import VitzooError, one_line

log = logging.getLogger("vitzoo.cli")

EXPORT_FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "torch-export": ".pt2"}
FORWARDED = {"demo": "vitzoo.demo:main", "bench": "vitzoo.bench.cli:main"}  # command -> function(argv) -> status
EXIT_FAILED, EXIT_USAGE = 1, 2


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (status 2) pointing at ``--help``."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vitzoo`` command."""
    parser = OneLineParser(prog="vitzoo", description="Image and video Vision Transformers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model for a recipe's task", description=cmd_train.__doc__)
    add_config_args(train)
    add_compile_arg(train)
    add_resume_arg(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a checkpoint on a recipe's validation set", description=cmd_eval.__doc__)
    add_config_args(ev)
    add_compile_arg(ev)
    ev.add_argument("--checkpoint", help="weights file (default: <output_dir>/checkpoints/best.safetensors)")
    ev.add_argument("--out", help="report folder (default: <output_dir>/eval/<checkpoint name>)")
    ev.set_defaults(func=cmd_eval)

    ex = sub.add_parser(
        "export", help="export a model to safetensors, ONNX or torch.export", description=cmd_export.__doc__
    )
    ex.add_argument(
        "source",
        metavar="MODEL_OR_CHECKPOINT",
        help="a weight file, a checkpoint folder, hf-hub:<org>/<name>[@<revision>] or a registered model name",
    )
    ex.add_argument("--format", choices=sorted(EXPORT_FORMATS), help="default: from the suffix of --out")
    ex.add_argument("--out", required=True, help="output file (.safetensors, .onnx or .pt2)")
    ex.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo", help="ONNX exporter")
    ex.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    ex.add_argument("--batch-size", type=int, default=2, help="batch of the tracing example (default 2)")
    ex.add_argument("--static-batch", action="store_true", help="fix the batch axis instead of keeping it dynamic")
    ex.add_argument(
        "--dynamic-size",
        action="store_true",
        help="ONNX: also keep frames, height and width dynamic (position tables interpolated in the graph)",
    )
    ex.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model config field when MODEL_OR_CHECKPOINT is a name, e.g. --set num_classes=10",
    )
    ex.add_argument("--check", action="store_true", help="compare the export with PyTorch on a batch of 3")
    ex.set_defaults(func=cmd_export)

    models = sub.add_parser("models", help="list registered model names", description=cmd_models.__doc__)
    models.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'vivit_*' (default: all)")
    models.set_defaults(func=cmd_models)

    add_ssl_commands(sub, add_config_args)  # pretrain, knn, linear-probe
    add_data_commands(sub)  # data check
    add_predict_command(sub)

    for name, target in FORWARDED.items():  # listed for --help; main() hands their arguments over unparsed
        forward = sub.add_parser(name, add_help=False, help=f"run {target.replace(':', '.')} (arguments passed on)")
        forward.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def forward(command: str, argv: list[str]) -> int:
    """Run the function behind a forwarded command (``demo``, ``bench``) with the remaining arguments."""
    module_name, func_name = FORWARDED[command].split(":")
    func = getattr(importlib.import_module(module_name), func_name, None)
    if func is None:
        print(f"vitzoo {command}: error: {module_name}.{func_name} does not exist in this checkout", file=sys.stderr)
        return EXIT_USAGE
    return int(func(argv) or 0)


class UsageError(VitzooError):
    """A mistake in the command line or its files: printed as one line, exit status 2."""


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate with multi-view averaging; writes eval.json and confusion_matrix.png, prints top-1/top-5."""
    import vitzoo.ssl  # noqa: F401  (registers the self-supervised tasks a recipe may name)
    from vitzoo.train.recipe import evaluate_from_config, load_run_config

    run = load_run_config(args.config, args.overrides)
    result = evaluate_from_config(run, checkpoint=args.checkpoint, out_dir=args.out)
    print(result)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a checkpoint (or a freshly built registered model) to the format of --format / the --out suffix."""
    from vitzoo.api import create, load, load_classifier
    from vitzoo.export import export, onnx_max_abs_diff, program_max_abs_diff
    from vitzoo.schema import check_range
    from vitzoo.train.config import parse_override

    out = Path(args.out)
    check_range("--batch-size", args.batch_size, low=1)
    if args.format is not None and out.suffix != EXPORT_FORMATS[args.format]:
        raise UsageError(
            f"--format {args.format} writes {EXPORT_FORMATS[args.format]} files, but --out is {out.name!r}"
        )
    if out.suffix not in EXPORT_FORMATS.values():
        raise UsageError(f"--out {out.name!r}: use a suffix among {sorted(EXPORT_FORMATS.values())}")
    source = Path(args.source)
    if source.is_file() or source.is_dir() or args.source.startswith("hf-hub:"):
        if args.overrides:
            raise UsageError("--set applies to model names only; a checkpoint carries its own config")
        model = load_classifier(args.source, command="vitzoo export")
    elif source.suffix in (".safetensors", ".pt", ".pth", ".bin"):
        raise UsageError(f"no such file: {source}")
    else:
        from vitzoo.registry import MODELS

        if args.source not in MODELS:
            raise UsageError(f"{args.source!r} is neither a file nor a model name: {_resolve_error(args.source)}")
        options = {}
        for text in args.overrides:
            parts, value = parse_override(text)
            options[".".join(parts)] = value
        model = create(args.source, **options)  # a bad field or value: ConfigError, one line
        log.warning("exporting %s with freshly initialised weights (no checkpoint given)", args.source)
    path = export(
        model,
        out,
        batch_size=args.batch_size,
        dynamic_batch=not args.static_batch,
        dynamic_size=args.dynamic_size,
        exporter=args.exporter,
        opset=args.opset,
    )
    print(f"wrote {path}")
    if args.check:
        if out.suffix == ".onnx":
            print(f"max |onnxruntime - pytorch| = {onnx_max_abs_diff(model, path):.3g}")
        elif out.suffix == ".pt2":
            print(f"max |torch.export - pytorch| = {program_max_abs_diff(model, path):.3g}")
        else:
            import torch

            reloaded = load(path).state_dict()
            same = all(torch.equal(value, reloaded[key]) for key, value in model.state_dict().items())
            print(f"reloaded with vitzoo.load: weights {'identical' if same else 'DIFFER'}")
    return 0


def _resolve_error(name: str) -> str:
    from vitzoo.registry import MODELS

    try:
        MODELS.resolve(name)
    except KeyError as exc:
        return str(exc.args[0])
    return ""


def cmd_models(args: argparse.Namespace) -> int:
    """Print the registered model names matching a glob, one per line."""
    from vitzoo.api import list_models

    names = list_models(args.pattern)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r}")
    print("\n".join(names))
    return 0


def _setup_logging(verbose: bool) -> None:
    """INFO on rank 0 (WARNING on the other ranks under torchrun), DEBUG with ``-v``."""
    import os

    rank = int(os.environ.get("RANK", "0"))
    level = logging.DEBUG if verbose else (logging.INFO if rank == 0 else logging.WARNING)
    logging.basicConfig(level=level, format=f"%(asctime)s [rank {rank}] %(name)s: %(message)s")
    logging.getLogger("onnx_ir").setLevel(max(level, logging.WARNING))  # its graph passes log every rewrite


def _error(command: str, exc: BaseException, status: int) -> int:
    """Print ``exc`` as one line and return ``status``."""
    print(f"vitzoo {command}: error: {one_line(exc)}", file=sys.stderr)
    return status


def _bug(command: str) -> int:
    """Print the traceback of the exception being handled, then the line saying it is a bug; returns 1."""
    from vitzoo._version import __version__

    traceback.print_exc()
    print(
        f"vitzoo {command}: this is a bug in vitzoo {__version__}, not a mistake in your input: please report it "
        "on the vitzoo issue tracker with the command line and the traceback above",
        file=sys.stderr,
    )
    return EXIT_FAILED


def run_command(command: str, func: Callable[[], int]) -> int:
    """Run ``func`` as the body of ``vitzoo COMMAND``: its status, or the status of the error it raised.

    A :class:`~vitzoo.errors.VitzooError` (a mistake in the input, or a failed checkpoint write) is printed as one
    line and returns its ``exit_status`` (2, or 1 for a failed write); any other exception is a bug: its traceback
    is printed with a last line saying where to report it, and the status is 1.
    """
    try:
        return int(func() or 0)
    except VitzooError as exc:
        return _error(command, exc, exc.exit_status)
    except Exception:
        return _bug(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vitzoo`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in FORWARDED:  # their own parsers and logging
        return run_command(argv[0], lambda: forward(argv[0], argv[1:]))
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return run_command(args.command, lambda: args.func(args))
    finally:
        from vitzoo.train.distributed import shutdown

        shutdown()


if __name__ == "__main__":
    sys.exit(main())
