"""Layer-level checks: fused SDPA vs plain softmax, dropout / drop-path only in training, embeddings."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from vitzoo.config import TransformerConfig
from vitzoo.layers import Attention, Block, PatchEmbed, TubeletEmbed


def test_attention_fused_equals_reference(reference_attention):
    attn = Attention(dim=64, num_heads=4, qk_norm=True).eval()
    x = torch.randn(3, 10, 64)
    fused = attn(x)
    reference_attention.enable()
    torch.testing.assert_close(fused, attn(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", vitzoo.list_models("*nano*"))
def test_every_nano_model_fused_equals_reference(name, reference_attention):
    model = vitzoo.create(name, num_classes=5).eval()
    x = torch.randn(2, *model.input_shape) if hasattr(model, "input_shape") else torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        fused = model(x)
        reference_attention.enable()
        ref = model(x)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)


def test_dropout_and_drop_path_only_in_training():
    cfg = TransformerConfig(embed_dim=32, depth=1, num_heads=2, attn_drop_rate=0.5, proj_drop_rate=0.5)
    block = Block(cfg, drop_path_rate=0.5)
    x = torch.randn(4, 6, 32)
    block.eval()
    torch.testing.assert_close(block(x), block(x), rtol=0, atol=0)
    block.train()
    assert not torch.equal(block(x), block(x))


@pytest.mark.parametrize("name", vitzoo.list_models("*nano*"))
def test_nano_models_deterministic_in_eval_with_all_dropouts(name):
    model = vitzoo.create(name, drop_rate=0.5, drop_path_rate=0.5, attn_drop_rate=0.5, proj_drop_rate=0.5)
    x = torch.randn(2, *model.input_shape) if hasattr(model, "input_shape") else torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    model.train()
    assert not torch.equal(model(x), model(x))


def test_patch_embed_shapes_and_errors():
    emb = PatchEmbed(patch_size=8, in_chans=3, embed_dim=16)
    assert emb(torch.randn(2, 3, 32, 24)).shape == (2, 12, 16)
    with pytest.raises(ValueError, match="divisible"):
        emb(torch.randn(2, 3, 30, 32))
    with pytest.raises(ValueError, match="expects"):
        emb(torch.randn(3, 32, 32))


def test_tubelet_embed_token_order_is_time_then_row_major_space():
    emb = TubeletEmbed(tubelet_size=2, patch_size=4, in_chans=1, embed_dim=1)
    with torch.no_grad():
        emb.proj.weight.zero_()
        emb.proj.weight[0, 0, 0, 0, 0] = 1.0  # picks the top-left pixel of the first frame of a tubelet
        emb.proj.bias.zero_()
    x = torch.zeros(1, 1, 4, 8, 8)
    x[0, 0, 2, 4, 0] = 7.0  # tubelet 1, patch row 1, col 0
    tokens = emb(x)  # (B, T', h, w, D)
    assert tokens.shape == (1, 2, 2, 2, 1)
    assert tokens[0, 1, 1, 0, 0] == 7.0 and tokens.abs().sum() == 7.0


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "quick_gelu"])
def test_mlp_activation_in_place_only_without_autograd(act):
    """Inference overwrites the fc1 output in place: same bits, one hidden-sized buffer less at the peak."""
    from torch.profiler import ProfilerActivity, profile

    from vitzoo.bench.memory import peak_allocated_bytes
    from vitzoo.layers import Mlp

    torch.manual_seed(0)
    mlp = Mlp(dim=16, hidden_dim=512, act=act).eval()
    x = torch.randn(256, 16)
    with torch.no_grad():
        out_no_grad = mlp(x)
    out_grad = mlp(x)
    assert torch.equal(out_no_grad, out_grad.detach())

    def peak(step) -> int:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        return peak_allocated_bytes(prof)

    hidden_bytes, out_bytes = 256 * 512 * 4, 256 * 16 * 4
    with torch.inference_mode():
        fused_peak = peak(lambda: mlp(x))
        seen = []
        handle = mlp.fc1.register_forward_hook(lambda module, args, out: seen.append(out.clone()) or None)
        hooked_out = mlp(x)
        handle.remove()
        # A hook sees (and may keep) the fc1 output: the activation must not overwrite it.
        assert torch.equal(seen[0], torch.nn.functional.linear(x, mlp.fc1.weight, mlp.fc1.bias))
        assert torch.equal(hooked_out, out_no_grad)
        functional_peak = peak(lambda: mlp.fc2(mlp.act(mlp.fc1(x))))
    if act == "quick_gelu":  # no in-place form: same peak as the functional path
        assert fused_peak >= functional_peak
    else:  # one hidden buffer and the output, against two hidden buffers
        assert functional_peak == 2 * hidden_bytes and fused_peak == hidden_bytes + out_bytes
