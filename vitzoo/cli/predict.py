"""``vitzoo predict``: the classes of videos (or images) from a checkpoint, one printed line and one JSON record each.

    vitzoo predict --checkpoint weights/vivit_joint_micro_4x2_motion.safetensors videos/ --out predictions.jsonl

Exit status: 0 when at least one input was read; 2, with one line on stderr, when the checkpoint or the arguments
are bad (checked before anything is decoded) or when no input could be read.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from vitzoo.errors import VitzooError, one_line
from vitzoo.schema import ConfigError

log = logging.getLogger("vitzoo.cli")


def add_command(sub) -> None:
    """Add ``predict`` to the ``vitzoo`` sub-command parsers ``sub``."""
    pred = sub.add_parser("predict", help="what is in these videos (or images), from a checkpoint",
                          description=cmd_predict.__doc__)  # fmt: skip
    pred.add_argument("--checkpoint", required=True, metavar="SOURCE",
                      help="anything vitzoo.load reads: a weight file, a saved folder, hf-hub:<org>/<name>, "
                      "a shipped weight's name or path")  # fmt: skip
    media = "video or image files, folders (searched recursively), text files listing paths"
    pred.add_argument("inputs", nargs="+", metavar="INPUT", help=media)
    pred.add_argument("--topk", type=int, default=5, help="classes per input and per window (default 5)")
    pred.add_argument("--stride", type=float, default=None, metavar="SECONDS",
                      help="seconds between the windows of a long video (default: half a window)")  # fmt: skip
    pred.add_argument("--out", default=None, help="write one JSON record per input to this .jsonl file")
    batch = "windows of a long video, or clips, per forward pass (default 8)"
    pred.add_argument("--batch-size", type=int, default=8, help=batch)
    pred.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1, ...")
    pred.add_argument("--amp", choices=("none", "bf16"), default="none", help="bfloat16 autocast (default none)")
    names = "class names, one per line in head order, replacing those the checkpoint records"
    pred.add_argument("--labels", default=None, metavar="FILE", help=names)
    pred.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the classes of every input; long videos get per-window top-k and a timeline of segments."""
    from vitzoo.durable import write_text_atomic
    from vitzoo.inference import iter_predictions, open_model
    from vitzoo.inference.run import check_options
    from vitzoo.train.distributed import DistInfo, default_device

    check_options(topk=args.topk, stride=args.stride, batch_size=args.batch_size)
    try:
        device = default_device(DistInfo(), args.device)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("train.device", "--device")) from None
    out = Path(args.out) if args.out is not None else None
    if out is not None and not out.parent.is_dir():
        raise ConfigError(f"--out {out}: its folder {out.parent} does not exist; create it or choose another path")
    try:
        model = open_model(args.checkpoint, labels=args.labels)
    except VitzooError as exc:  # (a damaged, unsafe or unfitting checkpoint; a missing labels file)
        raise ConfigError(f"--checkpoint {args.checkpoint}: {one_line(exc)}") from None
    records = []
    options = dict(topk=args.topk, stride=args.stride, batch_size=args.batch_size, device=device, amp=args.amp)
    for record in iter_predictions(model, args.inputs, **options):
        print(record.line(), flush=True)
        records.append(record)
    if not records:
        raise ConfigError(f"no video or image file in {args.inputs}")
    if out is not None:
        write_text_atomic(out, "".join(json.dumps(r.to_dict()) + "\n" for r in records))
        log.info("wrote %d records to %s", len(records), out)
    if len(records) == 1 and records[0].error is not None:
        raise ConfigError(f"{records[0].path} could not be read: {one_line(records[0].error)}")
    if all(r.error is not None for r in records):
        raise ConfigError(f"none of the {len(records)} inputs could be read (see the lines above)")
    return 0
