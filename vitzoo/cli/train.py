"""``vitzoo train``: the command that ``vitzoo pretrain`` (:mod:`vitzoo.cli.ssl`) also runs, and the recipe
arguments every recipe command takes. A module of its own so that :mod:`vitzoo.cli.main` and :mod:`vitzoo.cli.ssl`
both import it and not each other.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("vitzoo.cli")

EXIT_INTERRUPTED = 130  # an interrupted training run (Ctrl-C, SIGTERM), after its checkpoint


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` (the YAML recipe) and ``--set KEY=VALUE`` (repeatable overrides) to ``parser``."""
    parser.add_argument("--config", required=True, help="YAML recipe (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe entry, e.g. --set train.lr=3e-4 --set model.options.drop_path_rate=0.1 (repeatable)",
    )


def add_resume_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--resume [CHECKPOINT]``: continue from the newest readable checkpoint in output_dir, or a chosen one."""
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue the run in output_dir: from its newest readable checkpoint, or from CHECKPOINT "
        "(a step_*.state.pt or step_*.safetensors file)",
    )


def add_compile_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--compile``: the same as ``--set train.compile=true`` (``torch.compile`` the model in place)."""
    parser.add_argument(
        "--compile",
        dest="overrides",
        action="append_const",
        const="train.compile=true",
        help="torch.compile the model (the same as --set train.compile=true; checkpoints are unchanged)",
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Train the recipe's model for its task (default: classification); checkpoints, metrics and plots go to the
    recipe's output_dir."""
    import vitzoo.ssl  # noqa: F401  (registers the self-supervised tasks a recipe may name)
    from vitzoo.train.recipe import load_run_config, train_from_config

    run = load_run_config(args.config, args.overrides)
    result = train_from_config(run, resume=args.resume)
    if result.interrupted:
        log.warning(
            "interrupted at step %d; continue with --resume (checkpoint %s)", result.step, result.last_checkpoint
        )
        return EXIT_INTERRUPTED
    summary = f"step {result.step}, epoch {result.epoch}"
    if result.best_value is not None:
        summary += f", best {result.monitor} {result.best_value:.4g} ({result.best_checkpoint})"
    log.info("done: %s; outputs in %s", summary, result.out_dir)
    return 0
