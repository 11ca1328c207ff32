"""kNN and linear probe on synthetic features: separable clusters are solved, random labels stay at chance."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from vitzoo.ssl.features import extract_features
from vitzoo.ssl.knn import evaluate_knn, knn_accuracy, knn_scores
from vitzoo.ssl.linear_probe import evaluate_linear_probe, linear_probe

CLASSES, DIM = 4, 16


def clusters(n: int, *, seed: int, spread: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters around CLASSES fixed random centres (far apart relative to ``spread``)."""
    centres = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    return centres[labels] + spread * torch.randn(n, DIM, generator=g), labels


def test_knn_scores_equal_a_loop():
    g = torch.Generator().manual_seed(0)
    train, labels = torch.randn(30, 5, generator=g), torch.randint(0, 3, (30,), generator=g)
    queries = torch.randn(4, 5, generator=g)
    scores = knn_scores(train, labels, queries, k=7, temperature=0.1, num_classes=3, chunk_size=3)
    for q in range(4):
        sims = [float(torch.dot(queries[q], train[i]) / (queries[q].norm() * train[i].norm())) for i in range(30)]
        nearest = sorted(range(30), key=lambda i: -sims[i])[:7]
        votes = [0.0] * 3
        for i in nearest:
            votes[int(labels[i])] += math.exp(sims[i] / 0.1)
        torch.testing.assert_close(scores[q], torch.tensor(votes), rtol=1e-5, atol=0)


def test_knn_separates_clusters_and_not_random_labels():
    x_train, y_train = clusters(200, seed=0)
    x_val, y_val = clusters(200, seed=1)
    assert knn_accuracy(x_train, y_train, x_val, y_val, k=20).top1 == 1.0
    shuffled = y_train[torch.randperm(200, generator=torch.Generator().manual_seed(0))]
    chance = knn_accuracy(x_train, shuffled, x_val, y_val, k=20)
    assert chance.top1 < 0.45  # chance is 0.25
    assert chance.top5 == 1.0  # only 4 classes: top-5 is capped at 4 and always hits


def test_knn_caps_k_at_the_memory_bank():
    x, y = clusters(8, seed=0)
    assert knn_accuracy(x, y, x, y).k == 8


def test_linear_probe_separates_clusters_and_not_random_labels():
    x_train, y_train = clusters(200, seed=0, spread=0.7)
    x_val, y_val = clusters(200, seed=1, spread=0.7)
    result = linear_probe(x_train, y_train, x_val, y_val, epochs=10, batch_size=100)
    assert result.top1 > 0.95 and result.train_top1 > 0.95
    assert result.predict(x_val).shape == (200, CLASSES)
    shuffled = y_train[torch.randperm(200, generator=torch.Generator().manual_seed(0))]
    chance = linear_probe(x_train, shuffled, x_val, y_val, epochs=10, batch_size=100)
    assert chance.top1 < 0.45


def test_linear_probe_is_deterministic():
    x, y = clusters(64, seed=0)
    a = linear_probe(x, y, x, y, epochs=3, seed=5)
    b = linear_probe(x, y, x, y, epochs=3, seed=5)
    assert torch.equal(a.classifier.weight, b.classifier.weight)


class Frozen(nn.Module):
    """A 'backbone' whose features are a fixed linear map of the input (input ``(3, 4, 4)`` -> 16 features)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(48, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(1))


def test_model_entry_points_extract_features_once_in_eval_mode():
    torch.manual_seed(0)
    model = Frozen()
    x_train, y_train = clusters(96, seed=0)
    x_val, y_val = clusters(48, seed=1)
    lift = torch.linalg.pinv(model.proj.weight.detach())  # inputs whose features are the clusters
    train_set = TensorDataset((x_train - model.proj.bias.detach()) @ lift.T, y_train)
    val_set = TensorDataset((x_val - model.proj.bias.detach()) @ lift.T, y_val)
    train_set = TensorDataset(train_set.tensors[0].reshape(-1, 3, 4, 4), y_train)
    val_set = TensorDataset(val_set.tensors[0].reshape(-1, 3, 4, 4), y_val)
    features, labels = extract_features(model, train_set, batch_size=10, progress=False)
    torch.testing.assert_close(features, x_train, rtol=1e-4, atol=1e-4)
    assert torch.equal(labels, y_train) and model.training
    assert evaluate_knn(model, train_set, val_set, k=10, progress=False).top1 == 1.0
    assert evaluate_linear_probe(model, train_set, val_set, progress=False, epochs=10, batch_size=32).top1 > 0.95


def test_model_with_a_head_is_refused():
    with pytest.raises(ValueError, match="num_classes=0"):
        extract_features(nn.Flatten(0), TensorDataset(torch.randn(4, 3), torch.zeros(4)), progress=False)
