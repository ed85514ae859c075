"""The reference Transformer layers (tfs.nn) against torch.nn, with weights copied, in float64."""

import math

import pytest
import torch
from torch import nn

from tfs import nn as layers
from tfs.convert import copy_block_to_torch, copy_encoder_to_torch, copy_mha_to_torch

TOL = dict(rtol=0, atol=1e-6)


def test_split_and_merge_heads_are_inverse_and_put_heads_second():
    x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)
    heads = layers.split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[1, 2, 0], x[1, 0, 4:6])  # head 2 of token 0 is features 4..5
    assert torch.equal(layers.merge_heads(heads), x)
    with pytest.raises(ValueError):
        layers.split_heads(x, 3)


@pytest.mark.parametrize("case", ["none", "causal", "padding", "cross"])
def test_multi_head_attention_matches_nn_multihead_attention(case):
    torch.manual_seed(0)
    d_model, n_heads, batch, lq = 16, 4, 3, 5
    mine = layers.MultiHeadAttention(d_model, n_heads).double()
    theirs = nn.MultiheadAttention(d_model, n_heads, batch_first=True).double()
    copy_mha_to_torch(mine, theirs)
    x = torch.randn(batch, lq, d_model, dtype=torch.float64)
    if case == "cross":
        context = torch.randn(batch, 7, d_model, dtype=torch.float64)
        out, w = mine(x, context)
        ref_out, ref_w = theirs(x, context, context)
    elif case == "causal":
        allowed = torch.ones(lq, lq, dtype=torch.bool).tril()
        out, w = mine(x, mask=allowed)
        ref_out, ref_w = theirs(x, x, x, attn_mask=~allowed)  # torch: True = blocked
    elif case == "padding":
        keep = torch.arange(lq)[None, :] < torch.tensor([5, 3, 1])[:, None]  # (batch, Lk), True = token
        out, w = mine(x, mask=keep[:, None, None, :])
        ref_out, ref_w = theirs(x, x, x, key_padding_mask=~keep)
    else:
        out, w = mine(x)
        ref_out, ref_w = theirs(x, x, x)
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(w.mean(dim=1), ref_w, **TOL)
    assert w.shape == (batch, n_heads, lq, ref_w.shape[-1])


def test_multi_head_attention_accepts_a_3d_mask_for_every_head():
    torch.manual_seed(1)
    mha = layers.MultiHeadAttention(8, 2)
    x = torch.randn(2, 4, 8)
    mask = torch.rand(2, 4, 4) > 0.3
    mask[..., 0] = True
    _, w = mha(x, mask=mask)
    assert torch.all(w[~mask[:, None].expand_as(w)] == 0)


@pytest.mark.parametrize("shape", [(3, 7, 10), (1, 1, 10), (10,)])
def test_layer_norm_matches_nn_layer_norm(shape):
    torch.manual_seed(2)
    x = torch.randn(*shape, dtype=torch.float64) * 3 + 1
    mine = layers.LayerNorm(10, eps=1e-3).double()
    with torch.no_grad():
        mine.weight.normal_()
        mine.bias.normal_()
    theirs = nn.LayerNorm(10, eps=1e-3).double()
    theirs.load_state_dict(mine.state_dict())
    torch.testing.assert_close(mine(x), theirs(x), **TOL)


def test_feed_forward_is_linear_gelu_linear():
    torch.manual_seed(3)
    ff = layers.FeedForward(6, 24).double()
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    expected = ff.linear2(0.5 * ff.linear1(x) * (1 + torch.erf(ff.linear1(x) / math.sqrt(2))))
    torch.testing.assert_close(ff(x), expected, **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_transformer_block_matches_nn_transformer_encoder_layer(norm_first, masked):
    torch.manual_seed(4)
    d_model, n_heads, d_ff = 16, 4, 32
    mine = layers.TransformerBlock(d_model, n_heads, d_ff, norm_first=norm_first).double()
    theirs = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, activation="gelu",
                                        batch_first=True, norm_first=norm_first).double()
    copy_block_to_torch(mine, theirs)
    mine.keep_attention = True
    x = torch.randn(2, 6, d_model, dtype=torch.float64)
    if masked:
        keep = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
        out = mine(x, mask=keep[:, None, None, :])
        ref = theirs(x, src_key_padding_mask=~keep)
        torch.testing.assert_close(out[keep], ref[keep], **TOL)
    else:
        torch.testing.assert_close(mine(x), theirs(x), **TOL)
    assert mine.attention_weights.shape == (2, n_heads, 6, 6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_matches_nn_transformer_encoder(norm_first):
    torch.manual_seed(5)
    d_model, n_heads, d_ff, n_layers = 8, 2, 16, 3
    mine = layers.Encoder(n_layers, d_model, n_heads, d_ff, norm_first=norm_first).double()
    layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=norm_first)
    theirs = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model) if norm_first else None,
                                   enable_nested_tensor=False).double()
    copy_encoder_to_torch(mine, theirs)
    x = torch.randn(2, 5, d_model, dtype=torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    torch.testing.assert_close(mine(x, causal), theirs(x, mask=~causal), **TOL)


def test_sinusoidal_positions_formula_and_relative_offsets():
    pe = layers.sinusoidal_positions(50, 16, dtype=torch.float64)
    assert pe.shape == (50, 16)
    p, i = 7, 3
    assert math.isclose(pe[p, 2 * i].item(), math.sin(p / 10000 ** (2 * i / 16)), abs_tol=1e-12)
    assert math.isclose(pe[p, 2 * i + 1].item(), math.cos(p / 10000 ** (2 * i / 16)), abs_tol=1e-12)
    # PE[p + k] is a fixed rotation of PE[p], the same for every p
    k = 5
    freqs = 10000 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    cos, sin = torch.cos(k * freqs), torch.sin(k * freqs)
    s, c = pe[:-k, 0::2], pe[:-k, 1::2]
    torch.testing.assert_close(pe[k:, 0::2], s * cos + c * sin, rtol=0, atol=1e-12)
    torch.testing.assert_close(pe[k:, 1::2], c * cos - s * sin, rtol=0, atol=1e-12)
    assert layers.sinusoidal_positions(4, 8).dtype == torch.float32


def test_attention_without_positions_is_permutation_equivariant():
    torch.manual_seed(6)
    block = layers.TransformerBlock(8, 2, 16).double()
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    perm = torch.randperm(6)
    torch.testing.assert_close(block(x[:, perm]), block(x)[:, perm], **TOL)


def test_gradients_reach_every_parameter():
    torch.manual_seed(7)
    enc = layers.Encoder(2, 8, 2, 16, norm_first=True)
    enc(torch.randn(2, 3, 8)).pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.slow
def test_tiny_pre_ln_encoder_learns_to_sort_digits():
    """Chapter 03's toy task with the reference layers: >= 98% of held-out sequences sorted exactly."""
    from tfs.utils import seed_everything

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed_everything(0)
        seq_len, n_digits, d_model, steps = 8, 10, 32, 500
        digits_embedding, positions = nn.Embedding(n_digits, d_model), nn.Embedding(seq_len, d_model)
        encoder = layers.Encoder(2, d_model, 4, 2 * d_model, norm_first=True)
        readout = nn.Linear(d_model, n_digits)
        model = nn.ModuleList([digits_embedding, positions, encoder, readout])

        def forward(digits):
            return readout(encoder(digits_embedding(digits) + positions(torch.arange(seq_len))))

        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
        generator = torch.Generator().manual_seed(0)
        for _ in range(steps):
            digits = torch.randint(n_digits, (128, seq_len), generator=generator)
            loss = nn.functional.cross_entropy(forward(digits).reshape(-1, n_digits), digits.sort(-1).values.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        test = torch.randint(n_digits, (2000, seq_len), generator=torch.Generator().manual_seed(2026))
        with torch.no_grad():
            accuracy = (forward(test).argmax(-1) == test.sort(-1).values).all(-1).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert accuracy >= 0.98, f"held-out sequence accuracy {accuracy:.2%}"
