"""Standard transformer sizes (width, depth, heads), as in the ViT / ViViT papers, plus ``nano`` (unit tests) and
``micro`` (the CPU demo)."""

from __future__ import annotations

SIZES: dict[str, dict[str, int]] = {
    "nano": dict(embed_dim=64, depth=2, num_heads=2),
    "micro": dict(embed_dim=64, depth=4, num_heads=4),
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16),
}
