"""evaluate: multi-view averaging of probabilities or logits, top-1/top-5, confusion matrix, reports, sharding."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.helpers.training import RandomClips, nano_model
from vitzoo.train.eval import ShardSampler, evaluate
from vitzoo.train.metrics import confusion_matrix, topk_correct


class MeanPool(nn.Module):
    """A deterministic stand-in classifier: linear map of each clip's per-channel mean."""

    input_shape = (3, 2, 4, 4)

    def __init__(self, k: int) -> None:
        super().__init__()
        self.fc = nn.Linear(3, k)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3, 4))) * 5


def _reference(model, dataset, average):
    """Scores computed view by view, without batching."""
    scores, losses = [], []
    with torch.no_grad():
        for views, label in dataset:
            logits = torch.stack([model(v[None])[0] for v in views])  # (V, K)
            if average == "prob":
                s = logits.softmax(-1).mean(0)
                losses.append(-s[label].log())
            else:
                s = logits.mean(0)
                losses.append(F.cross_entropy(s[None], torch.tensor([label])))
            scores.append(s)
    return torch.stack(scores), torch.stack(losses).mean()


@pytest.mark.parametrize("average", ["prob", "logits"])
def test_multi_view_average_matches_view_by_view_reference(average):
    torch.manual_seed(0)
    model = MeanPool(7)
    data = RandomClips(11, MeanPool.input_shape, 7, views=3)
    result = evaluate(model, data, batch_size=4, average=average, progress=False)
    scores, loss = _reference(model, data, average)
    labels = data.labels
    assert result.num_samples == 11 and result.num_views == 3
    assert result.top1 == pytest.approx((scores.argmax(1) == labels).float().mean().item())
    top5 = (scores.topk(5, dim=1).indices == labels[:, None]).any(1).float().mean().item()
    assert result.top5 == pytest.approx(top5)
    assert result.loss == pytest.approx(loss.item(), rel=1e-5)
    expected = torch.zeros(7, 7, dtype=torch.int64)
    for t, p in zip(labels.tolist(), scores.argmax(1).tolist(), strict=True):
        expected[t, p] += 1
    assert torch.equal(result.confusion, expected)


def test_prob_and_logit_averaging_differ_when_views_disagree():
    model = MeanPool(2)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
        model.fc.bias.zero_()
    # view 1: logits (20, 0), confidently class 0; views 2 and 3: logits (0, 2), class 1 with p = 0.88
    views = torch.zeros(3, *MeanPool.input_shape)
    views[0, 0] = 4.0
    views[1:, 1] = 0.4
    data = [(views[None], torch.tensor([1]))]
    assert evaluate(model, data, average="logits", progress=False).top1 == 0.0  # mean logits (6.7, 1.3): class 0
    assert evaluate(model, data, average="prob", progress=False).top1 == 1.0  # mean probs (0.41, 0.59): class 1


def test_single_view_batches_and_top5_cap(tmp_path):
    model = MeanPool(3)  # fewer than 5 classes: top-5 counts every sample
    data = RandomClips(6, MeanPool.input_shape, 3)
    result = evaluate(model, data, batch_size=4, out_dir=tmp_path, progress=False, classes=["a", "b", "c"])
    assert result.num_views == 1 and result.top5 == 1.0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["top1"] == result.top1 and report["classes"] == ["a", "b", "c"]
    assert sum(map(sum, report["confusion_matrix"])) == 6
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_real_model_multi_view_restores_training_mode():
    model = nano_model(num_classes=5).train()
    data = RandomClips(4, model.input_shape, 5, views=2)
    result = evaluate(model, data, batch_size=3, progress=False)
    assert model.training
    assert 0 <= result.top1 <= result.top5 <= 1 and result.num_samples == 4


def test_wrong_shape_raises():
    with pytest.raises(ValueError, match="expected batches"):
        evaluate(MeanPool(2), [(torch.zeros(2, 3, 2, 4), torch.tensor([0, 1]))], progress=False)
    with pytest.raises(ValueError, match="average"):
        evaluate(MeanPool(2), [], average="median")


def test_shards_cover_every_sample_once():
    shards = [list(ShardSampler(10, rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(10))
    assert list(ShardSampler(3, with_seeds=True, seed=5)) == [(0, 5), (1, 6), (2, 7)]


def test_metric_helpers():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.15, 0.05]])
    labels = torch.tensor([2, 0])
    assert topk_correct(scores, labels, ks=(1, 2, 5)) == [1, 2, 2]
    assert confusion_matrix(scores.argmax(1), labels, 3).tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_a_head_that_does_not_fit_the_class_names_is_refused_before_any_work(tmp_path):
    """A 10-way head with 4 named classes used to train, then fail in every evaluation (plotting 10 ticks with 4
    labels); now fit and evaluate refuse it at once."""
    from vitzoo.train import ConfigError, fit

    model = nano_model(num_classes=10)
    data = RandomClips(4, model.input_shape, 4)  # names class0..class3
    with pytest.raises(ConfigError, match=r"num_classes=10 but 4 class names were given"):
        fit(model, data, val_set=data, out_dir=tmp_path, epochs=1, batch_size=2, progress=False)
    assert not any(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="num_classes=10"):
        evaluate(model, data, progress=False)
    evaluate(model, data, classes=[f"c{i}" for i in range(10)], progress=False)  # names for every output: fine


def test_class_counts_checked_against_the_datasets():
    from vitzoo.train import ConfigError
    from vitzoo.train.tasks.classification import check_classes, check_same_classes

    named = RandomClips(4, (3, 2, 4, 4), 4)
    unnamed = RandomClips(4, (3, 2, 4, 4), 4)
    named.num_classes, unnamed.num_classes, unnamed.classes = 4, 4, None  # as vitzoo.data's: labels 0..3, no names
    check_classes(named, 4, "training")
    with pytest.raises(ConfigError, match=r"has 4 classes \(named\) but the model has num_classes=5"):
        check_classes(named, 5, "training")
    check_classes(unnamed, 10, "validation")  # labels alone only bound the count from below
    with pytest.raises(ConfigError, match="set model.num_classes to"):
        check_classes(unnamed, 1, "validation")
    other = RandomClips(4, (3, 2, 4, 4), 4)
    other.classes = ["class0", "class1", "class3", "class2"]
    check_same_classes(named, RandomClips(4, (3, 2, 4, 4), 4))
    with pytest.raises(ConfigError, match="different classes"):
        check_same_classes(named, other)
