"""The end-to-end demo: synthetic data, a self-trained image ViT, ViViT fine-tuning, evaluation, export."""

from vitzoo.demo.run import main

__all__ = ["main"]
