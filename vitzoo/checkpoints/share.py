"""Saving a model for sharing: vitzoo's checkpoint folder, its model card, and pushing it to the Hugging Face Hub.

A vitzoo folder holds ``config.json`` (``"library_name": "vitzoo"``, the registered architecture name and the full
model config), ``model.safetensors`` (the weights, with the same config in the safetensors metadata so the file
alone also loads with ``vitzoo.load``) and ``README.md``, a model card generated from the config: architecture,
preprocessing, metrics when given, and how to load it. ``vitzoo.load(folder)`` and
``vitzoo.load("hf-hub:<org>/<name>")`` read it back; :func:`push_to_hub` uploads it with ``huggingface_hub``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from vitzoo._version import __version__
from vitzoo.checkpoints.checked import check_file_shapes
from vitzoo.checkpoints.checkpoint import Checkpoint
from vitzoo.checkpoints.hub import CheckpointFiles
from vitzoo.checkpoints.io import LABELS_KEY, model_metadata, read_state_dict, save_state_dict
from vitzoo.config import from_json, to_json
from vitzoo.durable import write_text_atomic
from vitzoo.errors import CheckpointFileError

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
PIPELINE_TAGS = {"image": "image-classification", "video": "video-classification"}


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (:func:`~vitzoo.durable.write_text_atomic`), readable by everyone like the weights."""
    write_text_atomic(path, text, mode=0o644)


def folder_config(model: nn.Module, *, metrics: dict[str, float] | None, labels: list[str] | None) -> dict[str, Any]:
    """The ``config.json`` of a vitzoo folder."""
    return {
        "library_name": "vitzoo",
        "vitzoo_version": __version__,
        "architecture": getattr(model, "arch_name", "") or "",
        "model_config": json.loads(to_json(model.cfg)),
        **({"metrics": metrics} if metrics else {}),
        **({"labels": list(labels)} if labels else {}),
    }


def _architecture_rows(model: nn.Module) -> list[tuple[str, str]]:
    cfg = model.cfg
    family = type(model).__name__
    if model.modality == "video":
        family += f", encoder `{cfg.encoder}`"
    prefix = []
    for name, on in (("class token", cfg.class_token), ("distillation token", getattr(cfg, "dist_token", False)),
                     (f"{getattr(cfg, 'reg_tokens', 0)} register tokens", getattr(cfg, "reg_tokens", 0))):  # fmt: skip
        if on:
            prefix.append(name)
    rows = [
        ("family", family),
        ("registered name", f"`{model.arch_name}`" if getattr(model, "arch_name", "") else "none (converted)"),
        ("width / depth / heads", f"{cfg.embed_dim} / {cfg.depth} / {cfg.num_heads}"),
        (
            "patch" + (" / tubelet" if model.modality == "video" else ""),
            f"{cfg.patch_size}" + (f" / {cfg.tubelet_size}" if model.modality == "video" else ""),
        ),  # fmt: skip
        ("prefix tokens", ", ".join(prefix) or "none"),
        ("pooling", cfg.global_pool + (" + norm after pooling" if cfg.use_fc_norm else "")),
        ("activation, norm eps", f"{cfg.act}, {cfg.norm_eps:g}"),
        ("classes", str(cfg.num_classes) if cfg.num_classes else "none (features)"),
        ("parameters", f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M"),
    ]
    with contextlib.suppress(NotImplementedError):  # a family without a FLOP formula
        rows.append(("forward GFLOPs per input", f"{type(model).flops(cfg).total / 1e9:.3g}"))
    return rows


def model_card(
    model: nn.Module,
    *,
    repo_id: str | None = None,
    metrics: dict[str, float] | None = None,
    labels: list[str] | None = None,
    dataset: str | None = None,
    license: str | None = None,
) -> str:
    """A model card (``README.md``) for ``model``: Hub metadata, architecture, preprocessing, metrics, usage."""
    from huggingface_hub import ModelCardData

    cfg = model.cfg
    name = repo_id or getattr(model, "arch_name", "") or "a vitzoo model"
    tags = ["vitzoo", "vision-transformer", model.modality]
    if model.modality == "video":
        tags.append(cfg.encoder)
    meta = ModelCardData(
        library_name="vitzoo",
        pipeline_tag=PIPELINE_TAGS[model.modality],
        tags=tags,
        datasets=[dataset] if dataset else None,
        license=license,
        metrics=sorted(metrics) if metrics else None,
    ).to_yaml()
    shape = ", ".join(map(str, model.input_shape))
    axes = "(B, C, T, H, W)" if model.modality == "video" else "(B, C, H, W)"
    where = f"hf-hub:{repo_id}" if repo_id else "path/to/this/folder"
    lines = [
        "---", meta, "---", "", f"# {name}", "",
        f"A {model.modality} Vision Transformer saved with vitzoo's `save_pretrained`.", "",
        "## Architecture", "", "| | |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in _architecture_rows(model)), "",
        "## Preprocessing", "",
        f"Input {axes} = (B, {shape}), float RGB in [0, 1], normalised with mean {tuple(cfg.mean)} and std "
        f"{tuple(cfg.std)} (the config's `mean` / `std`, which vitzoo's recipes apply)."
        + (" Other input sizes are accepted (`dynamic_size`)." if cfg.dynamic_size else ""), "",
        "## Metrics", "",
    ]  # fmt: skip
    if metrics:
        lines += ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())), ""]
    else:
        lines += ["Not recorded.", ""]
    if labels:
        lines += [f"Classes: {', '.join(map(str, labels))}.", ""]
    arch = getattr(model, "arch_name", "") or "<registered name>"
    lines += [
        "## Use", "", "```python", "import vitzoo", "", f'model = vitzoo.load("{where}")  # eval mode',
        f'# fine-tune: vitzoo.create("{arch}", pretrained="{where}", num_classes=...)', "```", "",
        "## Config", "", "```json", json.dumps(json.loads(to_json(cfg)), indent=2, sort_keys=True), "```", "",
    ]  # fmt: skip
    return "\n".join(lines)


def save_pretrained(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    metrics: dict[str, float] | None = None,
    labels: list[str] | None = None,
    dataset: str | None = None,
    license: str | None = None,
    repo_id: str | None = None,
    card: bool = True,
) -> Path:
    """Write ``model`` to ``folder`` for sharing: ``config.json``, ``model.safetensors`` and a ``README.md`` card.

    ``metrics`` (name -> value), ``labels`` (class names), ``dataset`` and ``license`` go into the card (and
    ``config.json``; the labels also into the weights' metadata, so ``model.safetensors`` alone carries them);
    ``repo_id`` makes the card's example load from the Hub. Every file is written atomically.
    ``vitzoo.load(folder)`` and, once uploaded, ``vitzoo.load("hf-hub:<repo_id>")`` read it back.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {**model_metadata(model), **({LABELS_KEY: json.dumps(list(labels))} if labels else {})}
    save_state_dict(model.state_dict(), folder / WEIGHTS_FILE, metadata=metadata)
    config = folder_config(model, metrics=metrics, labels=labels)
    _write_text(folder / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    if card:
        text = model_card(model, repo_id=repo_id, metrics=metrics, labels=labels, dataset=dataset, license=license)
        _write_text(folder / "README.md", text)
    log.info("saved %s to %s", config["architecture"] or type(model).__name__, folder)
    return folder


def read_vitzoo_folder(files: CheckpointFiles, config: dict[str, Any]) -> Checkpoint:
    """The checkpoint in a folder :func:`save_pretrained` wrote (its tensors checked against its config first)."""
    if not isinstance(config.get("model_config"), dict):
        raise CheckpointFileError(
            f"{files.description}: config.json has no model_config object (save_pretrained writes one); restore the "
            "file or load model.safetensors, which carries the config in its metadata"
        )
    cfg = from_json(json.dumps(config["model_config"]), source=f"{files.description}/config.json")
    weights = files.require(WEIGHTS_FILE)
    check_file_shapes(weights, cfg)
    arch = config.get("architecture", "")
    return Checkpoint(state=read_state_dict(weights), config=cfg, source=files.description, arch=arch)


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload vitzoo model",
    create_pr: bool = False,
    **card: Any,
):
    """Create (if needed) the Hub model repository ``repo_id`` and upload ``model`` as :func:`save_pretrained`
    writes it; ``card`` takes that function's ``metrics``, ``labels``, ``dataset``, ``license``.

    Returns ``huggingface_hub``'s ``CommitInfo``. Needs a network and a token with write access (``hf auth login``
    or ``token=``). Read it back with ``vitzoo.load("hf-hub:<repo_id>")``.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token, library_name="vitzoo", library_version=__version__)
    repo = api.create_repo(repo_id, private=private, exist_ok=True)
    repo_id = getattr(repo, "repo_id", repo_id)
    with tempfile.TemporaryDirectory(prefix="vitzoo-push-") as folder:
        save_pretrained(model, folder, repo_id=repo_id, **card)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message, revision=revision, create_pr=create_pr
        )
    log.info("pushed to hf-hub:%s", repo_id)
    return info
