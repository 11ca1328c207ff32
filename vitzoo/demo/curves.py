"""ViT-initialised vs from-scratch runs at equal steps, from each run's ``metrics.jsonl``.

Every demo run logs its training loss every few updates and a held-out top-1 (single view) part-way and
at the end (``train.eval_every`` in the recipe), so comparing the two initialisations at equal steps costs
no extra training: this module reads those records, tabulates them and plots the loss curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vitzoo.train.metrics import read_jsonl


def window_loss(records: list[dict], start: int, stop: int) -> float | None:
    """Mean logged training loss over updates ``start < step <= stop`` (None if none was logged there)."""
    losses = [r["loss"] for r in records if r.get("kind") == "train" and start < r["step"] <= stop]
    return sum(losses) / len(losses) if losses else None


def _cell(value: float | None, fmt: str, suffix: str = "") -> str:
    return "–" if value is None else format(value, fmt) + suffix


def val_top1_at(records: list[dict], step: int) -> float | None:
    """Held-out top-1 logged at ``step`` (None if the run did not evaluate then)."""
    return next((r["top1"] for r in records if r.get("kind") == "val" and r["step"] == step), None)


def comparison_table(pairs: Sequence[tuple[str, str, Path, Path]], *, steps: int, windows: int = 4) -> str:
    """Markdown: per encoder, training loss in ``windows`` equal step windows and held-out top-1, initialised from
    an image model vs from scratch.

    Args:
        pairs: ``(label, name of the image model, initialised run dir, scratch run dir)``.
        steps: updates per run (equal for both).
        windows: number of equal step windows the loss is averaged over.
    """
    edges = [round(steps * i / windows) for i in range(windows + 1)]
    loss_heads = " | ".join(f"loss {a + 1}-{b}" for a, b in zip(edges, edges[1:], strict=False))
    lines = [f"| model | init | {loss_heads} | held-out top-1 at step {edges[windows // 2]} / {steps} |"]
    lines.append("|---|---|" + "---|" * windows + "---|")
    for label, source, *runs in pairs:
        for init, run in zip((source, "scratch"), runs, strict=True):
            records = read_jsonl(run / "metrics.jsonl")
            spans = zip(edges, edges[1:], strict=False)
            losses = " | ".join(_cell(window_loss(records, a, b), ".2f") for a, b in spans)
            tops = [val_top1_at(records, s) for s in (edges[windows // 2], steps)]
            top1 = " / ".join(_cell(None if t is None else 100 * t, ".1f", "%") for t in tops)
            lines.append(f"| {label} | {init} | {losses} | {top1} |")
    return "\n".join(lines)


def plot_loss_curves(pairs: Sequence[tuple[str, str, Path, Path]], path: Path) -> Path:
    """Training loss against step: one colour per encoder, solid initialised from the image model, dashed from
    scratch (``pairs`` as for :func:`comparison_table`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (label, source, *runs) in enumerate(pairs):
        for init, run, style in zip((source, "scratch"), runs, ("-", "--"), strict=True):
            train = [r for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "train"]
            steps, losses = [r["step"] for r in train], [r["loss"] for r in train]
            ax.plot(steps, losses, style, color=f"C{i}", label=f"{label} [{init}]")
    ax.set_xlabel("update step")
    ax.set_ylabel("training loss")
    ax.set_title("initialised from an image model (solid) vs from scratch (dashed), same recipe and steps")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
