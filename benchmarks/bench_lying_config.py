"""Time and memory of refusing a lying ``config.json`` (issue 25, item 6).

A tiny real checkpoint folder (timm: ``vit_tiny_patch16_224`` at 48 wide x 2 deep; transformers: ``ViTModel`` and
``VideoMAEModel`` the same size) gets a ``config.json`` that claims an enormous model; ``vitzoo.load`` must refuse
it in one line. Each claim runs in a fresh process, which reports the wall time of ``vitzoo.load`` and its peak
resident memory (``ru_maxrss``) above the process's after importing vitzoo, timm and transformers.

Run: ``python benchmarks/bench_lying_config.py`` (a few seconds per row, under the shared lock when timing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLAIMS = [  # (source layout, what the claim edits in config.json)
    ("timm", {"model_args": {"embed_dim": 1536, "depth": 40, "num_heads": 16}}),
    ("timm", {"model_args": {"embed_dim": 65536, "num_heads": 16}}),
    ("timm", {"model_args": {"img_size": 100_000}}),
    ("timm", {"architecture": "vit_giant_patch14_224", "model_args": None}),
    ("transformers ViT", {"hidden_size": 65536, "num_attention_heads": 16}),
    ("transformers ViT", {"num_hidden_layers": 100_000}),
    ("transformers ViT", {"image_size": 160_000}),
    ("transformers VideoMAE", {"num_frames": 200_000, "image_size": 64, "tubelet_size": 4}),
]

CHILD = """
import json, resource, sys, time
import timm, transformers, vitzoo
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    vitzoo.load(sys.argv[1])
    outcome = "LOADED"
except ValueError as err:
    outcome = str(err)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "base_mb": base / 1024, "extra_mb": (peak - base) / 1024, "outcome": outcome}))
"""


def _folder(root: Path, layout: str) -> Path:
    from tests.helpers.hub_sources import hf_folder, timm_folder

    if layout == "timm":
        return timm_folder(root / "timm", "vit_tiny_patch16_224", num_classes=3)[1]
    if layout == "transformers ViT":
        return hf_folder(root / "vit", "ViTModel", "ViTConfig")[1]
    return hf_folder(
        root / "mae", "VideoMAEModel", "VideoMAEConfig", num_frames=4, tubelet_size=2, intermediate_size=96
    )[1]


def main() -> None:
    print("| source | claim | refused in (s) | peak memory above the imports (MB) | message (start) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (layout, claim) in enumerate(CLAIMS):
            folder = _folder(Path(tmp) / str(i), layout)
            path = folder / "config.json"
            config = json.loads(path.read_text())
            for key, value in claim.items():
                if value is None:
                    config.pop(key, None)
                elif isinstance(value, dict):
                    config.setdefault(key, {}).update(value)
                else:
                    config[key] = value
            path.write_text(json.dumps(config))
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            message = row["outcome"].split(": ", 1)[-1][:90].replace("|", "/")
            print(f"| {layout} | `{json.dumps(claim)}` | {row['seconds']:.2f} | {row['extra_mb']:.0f} | {message} |")


if __name__ == "__main__":
    main()
