"""NT-Xent (normalised temperature-scaled cross entropy), any number of views per sample.

SimCLR (Chen et al., 2020, https://arxiv.org/abs/2002.05709), with the multi-view form of CVRL
(Qian et al., 2021, https://arxiv.org/abs/2008.03800): each sample contributes ``V >= 2`` views; the
embeddings are L2-normalised, ``s_ik = z_i . z_k / tau``. For an anchor view ``i`` of sample ``b``, its
positives ``P(i)`` are the other ``V - 1`` views of ``b`` and its negatives ``N(i)`` all views of all other
samples. Every ordered positive pair ``(i, p)`` is one SimCLR term with the same negatives:

    l(i, p) = -log( exp(s_ip) / (exp(s_ip) + sum_{k in N(i)} exp(s_ik)) )

and the loss is the mean of ``l(i, p)`` over all ``B V (V - 1)`` ordered positive pairs. With ``V = 2`` this is
exactly SimCLR's loss (lightly's ``NTXentLoss``). With ``V > 2`` the other positives are not in the
denominator (they are neither negatives nor ignored terms of the same softmax); for the form where they
are (SupCon's ``L_out`` with each sample its own class) use :class:`~vitzoo.ssl.losses.SupConLoss` with
``labels=None``.

With ``gather_distributed=True`` the keys (positives and negatives) are the embeddings of all processes
(:func:`vitzoo.ssl.gather.all_gather`); the anchors are this process's views only.
"""

from __future__ import annotations

import torch

from vitzoo.ssl.losses.batch import check_views
from vitzoo.ssl.losses.precision import full_precision
from vitzoo.ssl.losses.temperature import TemperatureContrastiveLoss


class NTXentLoss(TemperatureContrastiveLoss):
    """NT-Xent over multi-view embeddings ``(B, V, D)`` (see the module docstring).

    Args:
        temperature: ``tau`` (SimCLR and CVRL use 0.1 with large batches).
        gather_distributed: take positives and negatives from every process (identity when not distributed).
    """

    @full_precision
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` ``(B, V, D)`` -> scalar loss."""
        check_views(z, min_views=2)
        num_views = z.shape[1]
        anchors, keys, own = self.anchors_and_keys(z)  # (N, D), (M, D), (N,): N = B V, M = W B V
        if keys.shape[0] // num_views < 2:
            raise ValueError("NT-Xent needs at least 2 samples (one gives no negatives)")
        key_sample = torch.arange(keys.shape[0], device=z.device) // num_views  # (M,)
        same_sample = (own // num_views)[:, None] == key_sample[None, :]  # (N, M): the anchor's own views
        # the other V - 1 views of the anchor's sample: rows first + (view + k) mod V, k = 1 .. V - 1
        shifts = torch.arange(1, num_views, device=z.device)  # (V - 1,)
        positives = own[:, None] - own[:, None] % num_views + (own[:, None] + shifts) % num_views  # (N, V - 1)

        logits = (anchors / self.temperature) @ keys.T  # (N, M)
        log_neg = torch.logsumexp(logits.masked_fill(same_sample, float("-inf")), dim=1, keepdim=True)  # (N, 1)
        positive = logits.gather(1, positives)  # (N, V - 1): s_ip
        return (torch.logaddexp(positive, log_neg) - positive).mean()  # mean of l(i, p) over all pairs
