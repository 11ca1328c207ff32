"""The methods as tasks, on a tiny image ViT and a tiny video model: loss, gradients, the momentum target."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from tests.helpers.ssl_inputs import IMAGE_BACKBONE
from vitzoo.schema import ConfigError
from vitzoo.ssl import build_method, method_config
from vitzoo.ssl.knn import evaluate_knn
from vitzoo.ssl.methods import SimCLR, SimCLRConfig
from vitzoo.ssl.metrics import embedding_std
from vitzoo.ssl.momentum import cosine_momentum, ema_update
from vitzoo.train.task import StepOutput, ValidationContext

SMALL = {
    "simclr": dict(proj_hidden_dim=32, proj_out_dim=16),
    "supcon": dict(proj_hidden_dim=32, proj_out_dim=16),
    "byol": dict(proj_hidden_dim=32, proj_out_dim=16, pred_hidden_dim=32),
    "simsiam": dict(proj_hidden_dim=32, proj_out_dim=16, pred_hidden_dim=8),
    "vicreg": dict(expander_dim=32),
}
HEADS = {"simclr": ["projector"], "supcon": ["projector"], "byol": ["projector", "predictor"],
         "simsiam": ["projector", "predictor"], "vicreg": ["expander"]}  # fmt: skip


def batch_for(shape: tuple[int, ...], *, batch: int = 4, views: int = 2):
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, views, *shape, generator=g), torch.tensor([0, 1, 0, 1][:batch])


@pytest.mark.parametrize("name", list(SMALL))
def test_training_step_reaches_backbone_and_heads(name, backbone):
    model, shape = backbone
    task = build_method(name, model, **SMALL[name])
    out = task(batch_for(shape))
    assert isinstance(out, StepOutput) and out.batch_size == 4
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert 0 < out.metrics["embedding_std"] < 1 and 0 < out.metrics["feature_std"] < 1
    out.loss.backward()
    for prefix in ["model", *HEADS[name]]:
        params = [(k, p) for k, p in task.named_parameters() if k.startswith(prefix + ".") and p.requires_grad]
        missing = [k for k, p in params if p.grad is None]
        assert params and not missing, f"{prefix}: no gradient for {missing}"
        assert any(p.grad.abs().sum() > 0 for _, p in params)
    targets = [p for k, p in task.named_parameters() if k.startswith("target_")]
    assert (name == "byol") == bool(targets)
    assert all(not p.requires_grad and p.grad is None for p in targets)


def test_more_views_and_video_shapes(backbone):
    model, shape = backbone
    task = build_method("simclr", model, **SMALL["simclr"])
    assert torch.isfinite(task(batch_for(shape, views=3)).loss)
    with pytest.raises(ValueError, match="V >= 2"):
        task(batch_for(shape, views=1))


def test_supcon_needs_labels_and_uses_them():
    import vitzoo

    task = build_method("supcon", vitzoo.create(IMAGE_BACKBONE, num_classes=0), **SMALL["supcon"])
    views, labels = batch_for((3, 32, 32))
    with pytest.raises(ValueError, match="needs labels"):
        task(views)
    assert task((views, labels)).loss.item() != pytest.approx(task((views, torch.arange(4))).loss.item())


def test_backbone_with_a_head_is_refused():
    import vitzoo

    model = vitzoo.create("vit_nano_patch8_32", num_classes=5)
    with pytest.raises(ValueError, match="num_classes=0"):
        build_method("simclr", model)(batch_for((3, 32, 32)))


def test_cosine_momentum_schedule():
    assert cosine_momentum(1, 101) == 0.996
    assert cosine_momentum(51, 101) == pytest.approx(0.998, abs=1e-15)
    assert cosine_momentum(101, 101) == 1.0
    assert cosine_momentum(26, 101) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2, abs=1e-15)
    with pytest.raises(ValueError, match="step must be in"):
        cosine_momentum(0, 10)


def test_byol_on_update_is_an_exact_ema_and_copies_buffers():
    import vitzoo

    torch.manual_seed(0)
    shape = (3, 32, 32)
    task = build_method("byol", vitzoo.create(IMAGE_BACKBONE, num_classes=0), **SMALL["byol"])
    opt = torch.optim.SGD([p for p in task.parameters() if p.requires_grad], lr=0.5)
    task(batch_for(shape)).loss.backward()  # also moves the BatchNorm running statistics of both networks
    opt.step()
    before = {k: v.clone() for k, v in task.state_dict().items() if k.startswith("target_")}
    online = {k: v.clone() for k, v in task.state_dict().items() if not k.startswith("target_")}
    task.on_update(3, 11)
    tau = cosine_momentum(3, 11)
    assert task.momentum == tau and 0.996 < tau < 1
    moved = 0
    for key, new in task.state_dict().items():
        if not key.startswith("target_"):
            continue
        source = online[key.replace("target_model.", "model.").replace("target_projector.", "projector.")]
        if "running_" in key or "num_batches" in key:
            assert torch.equal(new, source), key  # buffers follow the online network exactly
        else:
            torch.testing.assert_close(new, tau * before[key] + (1 - tau) * source, rtol=1e-6, atol=1e-7)
            moved += not torch.equal(new, before[key])
    assert moved > 0


def test_ema_update_checks_structure():
    with pytest.raises(ValueError, match="differ"):
        ema_update(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Linear(2, 2)), 0.9)


def test_extra_state_round_trip():
    import vitzoo

    torch.manual_seed(0)
    task = build_method("byol", vitzoo.create("vit_nano_patch8_32", num_classes=0), **SMALL["byol"])
    extra = task.extra_state_dict()
    assert any(k.startswith("target_model.") for k in extra) and any(k.startswith("predictor.") for k in extra)
    assert not any(k.startswith("model.") for k in extra)
    torch.manual_seed(1)
    other = build_method("byol", vitzoo.create("vit_nano_patch8_32", num_classes=0), **SMALL["byol"])
    other.load_extra_state_dict(extra)
    assert all(torch.equal(v, other.extra_state_dict()[k]) for k, v in extra.items())


def test_build_method_errors():
    with pytest.raises(ConfigError, match="did you mean simclr"):
        method_config("simclrr")
    with pytest.raises(ConfigError, match="unknown config key 'method.temprature' .did you mean method.temperature"):
        method_config("simclr", {"temprature": 0.2}, prefix="method.")
    with pytest.raises(ConfigError, match="head='v3'; expected one of 'v1', 'v2'"):
        method_config("simclr", {"head": "v3"})
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        method_config("supcon", {"temperature": 0})
    with pytest.raises(ConfigError, match="base_momentum <= final_momentum"):
        method_config("byol", {"base_momentum": 0.999, "final_momentum": 0.99})
    with pytest.raises(ConfigError, match="head="):
        SimCLR(torch.nn.Identity(), SimCLRConfig(head="v3"))  # direct construction is validated too
    with pytest.raises(ValueError, match="feature width"):
        build_method("simclr", torch.nn.Identity())
    assert method_config("vicreg", {"expander_dim": "64", "mu_param": 10}).expander_dim == 64  # YAML strings


def test_embedding_std_indicates_collapse():
    g = torch.Generator().manual_seed(0)
    healthy = torch.randn(4096, 256, generator=g)
    assert embedding_std(healthy).item() == pytest.approx(1 / math.sqrt(256), rel=0.02)
    collapsed = torch.randn(1, 256, generator=g) + 1e-4 * torch.randn(4096, 256, generator=g)
    assert embedding_std(collapsed).item() < 1e-3


def test_validate_is_knn_on_ctx_model():
    import vitzoo

    torch.manual_seed(0)
    model = vitzoo.create("vit_nano_patch8_32", num_classes=0)
    task = build_method("simsiam", model, **SMALL["simsiam"], knn_k=3)
    g = torch.Generator().manual_seed(0)
    train = TensorDataset(torch.randn(12, 3, 32, 32, generator=g), torch.arange(12) % 3)
    val = TensorDataset(torch.randn(6, 3, 32, 32, generator=g), torch.arange(6) % 3)
    ctx = ValidationContext(model=model, device=torch.device("cpu"), step=1, epoch=1, batch_size=5, progress=False)
    result = task.validate((train, val), ctx)
    expected = evaluate_knn(model, train, val, k=3, batch_size=5, progress=False)
    assert task.monitor in result and task.higher_is_better
    assert result["knn_top1"] == expected.top1 and result["num_samples"] == 6
    assert model.training  # restored after feature extraction


class _BatchNormBackbone(torch.nn.Module):
    """A backbone whose features depend on the whole batch (BatchNorm in training mode); records its batch sizes."""

    num_features = 4

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(12, 4)
        self.bn = torch.nn.BatchNorm1d(4)
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        return self.bn(self.fc(x.flatten(1)))


def test_views_pass_one_at_a_time_without_batch_norm_and_folded_with_it(backbone):
    """Per-view passes give the folded pass's features for a backbone without BatchNorm (eval, no dropout);
    a backbone with BatchNorm sees all views at once, so its statistics cover every view."""
    model, shape = backbone
    task = SimCLR(model.eval(), SimCLRConfig(**SMALL["simclr"]))
    views, _ = batch_for(shape, views=3)
    folded = model(views.flatten(0, 1)).unflatten(0, views.shape[:2])  # (B, V, D)
    torch.testing.assert_close(task.embed(views), folded, rtol=1e-5, atol=1e-5)

    bn = _BatchNormBackbone().train()
    task = SimCLR(bn, SimCLRConfig(**SMALL["simclr"]))
    views = torch.randn(4, 3, 3, 2, 2)
    features = task.embed(views)
    assert bn.batches == [12]  # one pass over B x V
    per_view = torch.stack([bn(v) for v in views.unbind(1)], 1)
    assert not torch.allclose(features, per_view, atol=1e-3)  # control: per-view statistics would differ


def test_contrastive_and_predictor_configs_share_a_base_with_unchanged_defaults():
    """SimCLR and SupCon share ContrastiveConfig, BYOL and SimSiam PredictorConfig: names and defaults as before."""
    from dataclasses import asdict

    from vitzoo.ssl.methods import BYOLConfig, SimSiamConfig, SupConConfig
    from vitzoo.ssl.methods.config import ContrastiveConfig, PredictorConfig

    knn = dict(knn_k=200, knn_temperature=0.07)
    shared = dict(**knn, temperature=0.1, proj_hidden_dim=None, proj_out_dim=128, gather_distributed=True)
    assert asdict(SupConConfig()) == shared and asdict(SimCLRConfig()) == {**shared, "head": "v1"}
    assert issubclass(SupConConfig, ContrastiveConfig) and issubclass(SimCLRConfig, ContrastiveConfig)
    byol = dict(**knn, proj_hidden_dim=4096, proj_out_dim=256, pred_hidden_dim=4096)
    assert asdict(BYOLConfig()) == {**byol, "base_momentum": 0.996, "final_momentum": 1.0}
    assert asdict(SimSiamConfig()) == dict(**knn, proj_hidden_dim=2048, proj_out_dim=2048, pred_hidden_dim=512)
    assert issubclass(BYOLConfig, PredictorConfig) and issubclass(SimSiamConfig, PredictorConfig)
    for name, options in {"supcon": {"proj_out_dim": 0}, "simsiam": {"pred_hidden_dim": -1}}.items():
        key = next(iter(options))
        with pytest.raises(ConfigError, match=rf"^{key} must be > 0, got {options[key]}$"):
            method_config(name, options)


@pytest.mark.parametrize("name", list(SMALL))
def test_the_base_constructor_validates_and_keeps_the_config(name, backbone):
    from vitzoo.ssl.methods import METHODS, SSLMethod

    model, _ = backbone
    method_cls, config_cls = METHODS[name]
    assert method_cls.config_class is config_cls
    cfg = config_cls(**SMALL[name], knn_k=7)
    task = method_cls(model, cfg)
    assert task.cfg is cfg and task.knn_k == 7 and task.knn_temperature == 0.07 and task.num_features == 64
    assert task.min_views == (1 if name == "supcon" else 2)
    assert type(method_cls(model).cfg) is config_cls  # None: the defaults
    legacy = SSLMethod(model, cfg, min_views=3, knn_k=5, knn_temperature=0.5)  # the former keywords still work
    assert (legacy.min_views, legacy.knn_k, legacy.knn_temperature) == (3, 5, 0.5)
    with pytest.raises(ConfigError, match="knn_k must be > 0, got 0"):
        method_cls(model, config_cls(**SMALL[name], knn_k=0))
