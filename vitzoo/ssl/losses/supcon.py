"""Supervised contrastive loss (SupCon), the ``L_out`` form.

Khosla et al., 2020, "Supervised Contrastive Learning", https://arxiv.org/abs/2004.11362, eq. (2).
Embeddings ``(B, V, D)`` are L2-normalised and flattened to ``N = B V`` anchors. For anchor ``i``,
``A(i)`` is every other view in the batch and ``P(i)`` those with the same label (other views of the same
sample included); ``s_ik = z_i . z_k / tau``:

    l_i = -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)} exp(s_ia) )

The loss is the mean of ``l_i`` over anchors with at least one positive (with ``V >= 2`` that is every
anchor, and the result equals the official code's; anchors without positives, possible only with ``V = 1``,
are left out of the mean instead of counting as 0). The official code's extra factor
``temperature / base_temperature`` is not applied (it is 1 with its defaults).

``labels=None`` makes each sample its own class: SimCLR's multi-view loss with the other positives in the
denominator (equal to :class:`~vitzoo.ssl.losses.NTXentLoss` when ``V = 2``).
"""

from __future__ import annotations

import torch

from vitzoo.ssl.gather import all_gather
from vitzoo.ssl.losses.batch import check_views
from vitzoo.ssl.losses.precision import full_precision
from vitzoo.ssl.losses.temperature import TemperatureContrastiveLoss


class SupConLoss(TemperatureContrastiveLoss):
    """SupCon ``L_out`` over ``(B, V, D)`` embeddings and ``(B,)`` labels (see the module docstring).

    Args:
        temperature: ``tau`` (the paper uses 0.1).
        gather_distributed: contrast against the embeddings (and labels) of every process.
    """

    @full_precision
    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``z`` ``(B, V, D)``, ``labels`` ``(B,)`` integer (or None: one class per sample) -> scalar loss."""
        check_views(z)
        batch, num_views = z.shape[:2]
        if labels is not None and labels.shape != (batch,):
            raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
        anchors, keys, anchor_idx = self.anchors_and_keys(z)  # (N, D), (M, D), (N,) rows in keys
        key_idx = torch.arange(keys.shape[0], device=z.device)  # (M,)
        if labels is None:
            anchor_labels, key_labels = anchor_idx // num_views, key_idx // num_views
        else:
            anchor_labels = labels.repeat_interleave(num_views)  # (N,)
            key_labels = all_gather(anchor_labels) if self.gather_distributed else anchor_labels  # (M,)
        is_self = anchor_idx[:, None] == key_idx[None, :]  # (N, M)
        positive = (anchor_labels[:, None] == key_labels[None, :]) & ~is_self  # (N, M)
        num_pos = positive.sum(dim=1)  # (N,)
        if not bool((num_pos > 0).any()):
            raise ValueError("SupCon found no positive pair: use V >= 2 views or batches with repeated labels")

        logits = (anchors / self.temperature) @ keys.T  # (N, M)
        log_denominator = torch.logsumexp(logits.masked_fill(is_self, float("-inf")), dim=1)  # (N,)
        # sum_p log(exp(s_ip) / denominator) = sum_p s_ip - |P(i)| log(denominator)
        sum_pos = logits.masked_fill(~positive, 0.0).sum(dim=1) - num_pos * log_denominator  # (N,)
        has_pos = num_pos > 0
        return -(sum_pos[has_pos] / num_pos[has_pos]).mean()
