"""The one model loop: features in dataset order, sharded across ranks like evaluation and gathered back."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vitzoo.train.features as features_module
from vitzoo.train.features import eval_loader, extract_features, loader_features, model_outputs, unshard


class Encoder(nn.Module):
    """A deterministic stand-in backbone: ``(B, 3, 4, 4) -> (B, 5)``, with dropout to show eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(48, 5)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(x.flatten(1)))


def _data(n: int) -> TensorDataset:
    g = torch.Generator().manual_seed(n)
    return TensorDataset(torch.randn(n, 3, 4, 4, generator=g), torch.arange(n) % 3)


def test_features_are_the_models_outputs_in_order_in_eval_mode():
    torch.manual_seed(0)
    model, data = Encoder(), _data(11)
    features, labels = extract_features(model, data, batch_size=4, progress=False)
    with torch.no_grad():
        expected = model.proj(data.tensors[0].flatten(1))  # eval mode: no dropout
    torch.testing.assert_close(features, expected)
    assert torch.equal(labels, data.tensors[1]) and model.training  # mode restored
    loader = DataLoader(data, batch_size=3)  # a ready loader is read as given
    torch.testing.assert_close(extract_features(model, loader, progress=False)[0], expected)


def shard_features(model: nn.Module, data: TensorDataset, *, rank: int, world_size: int, batch_size: int = 2):
    """What rank ``rank`` of ``world_size`` extracts: its shard of ``data``, read as extract_features reads it."""
    loader = eval_loader(data, batch_size=batch_size, rank=rank, world_size=world_size, with_seeds=False)
    return loader_features(model, loader, progress=False)


@pytest.mark.parametrize("n", [11, 3])
def test_two_shards_unshard_to_the_one_process_features(n):
    """World size 2 without processes: rank r reads samples r, r + 2, ...; unshard restores dataset order (n = 3
    with 4 ranks leaves a rank empty)."""
    model, data = Encoder(), _data(n)
    whole, whole_labels = extract_features(model, data, batch_size=4, progress=False)
    for world in (2, 4):
        shards = [shard_features(model, data, rank=r, world_size=world) for r in range(world)]
        for r, (f, y) in enumerate(shards):
            torch.testing.assert_close(f, whole[r::world]) if len(f) else None
            assert torch.equal(y, whole_labels[r::world])
        torch.testing.assert_close(unshard([f for f, _ in shards]), whole)
        assert torch.equal(unshard([y for _, y in shards]), whole_labels)
    halves = [shard_features(model, data, rank=r, world_size=2)[1] for r in range(2)]
    assert not torch.equal(torch.cat(halves), whole_labels)  # negative control: concatenating shards is not order


def test_extract_features_gathers_the_shards_of_every_rank(monkeypatch):
    """Rank 0 of 2: it extracts its shard, receives rank 1's through gather_objects, returns every row in order."""
    model, data = Encoder(), _data(9)
    whole, whole_labels = extract_features(model, data, progress=False)
    seen = []

    def gather_objects(obj):
        seen.append(obj)
        return [obj, shard_features(model, data, rank=1, world_size=2)]

    monkeypatch.setattr(features_module, "rank", lambda: 0)
    monkeypatch.setattr(features_module, "world_size", lambda: 2)
    monkeypatch.setattr(features_module, "gather_objects", gather_objects)
    features, labels = extract_features(model, data, batch_size=4, progress=False)
    assert len(seen) == 1 and len(seen[0][0]) == 5  # rank 0 extracted only its 5 of 9 samples
    torch.testing.assert_close(features, whole)
    assert torch.equal(labels, whole_labels)


def test_unshard_refuses_shards_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"rank 0 holds 3 of 4 rows; its shard has 2 \(0, 0 \+ 2"):
        unshard([torch.zeros(3), torch.zeros(1)])


def test_loop_folds_views_and_checks_inputs():
    model = Encoder()
    views = torch.randn(2, 3, 3, 4, 4)  # (B, V, C, H, W)
    ((out, labels),) = list(model_outputs(model, [(views, [0, 1])], input_ndim=4, progress=False))
    assert out.shape == (2, 3, 5) and labels.tolist() == [0, 1]
    torch.testing.assert_close(out[1, 2], model.eval()(views[1, 2][None])[0].detach())
    with pytest.raises(ValueError, match="expected batches"):
        list(model_outputs(model, [(torch.zeros(2, 4, 4), [0, 1])], input_ndim=4, progress=False))
    with pytest.raises(ValueError, match="amp='fp16'"):
        list(model_outputs(model, [], amp="fp16"))
    with pytest.raises(ValueError, match="num_classes=0"):
        extract_features(nn.Flatten(0), TensorDataset(torch.randn(4, 3), torch.zeros(4)), progress=False)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(48, 5), nn.Unflatten(1, (5, 1)))  # (B, 5, 1): not features
    with pytest.raises(ValueError, match="num_classes=0"):
        extract_features(classifier, _data(4), progress=False)
    assert classifier.training  # the mode is restored when the loop stops early
