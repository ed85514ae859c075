"""What BERT and GPT need from the reference layers (tfs.nn): masks, dropout, activations, bias,
the causal flag, the fused path without attention weights, and the KV cache."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tfs import nn as tnn
from tfs.convert import copy_mha_to_torch

TOL = dict(rtol=0, atol=1e-10)


def test_padding_mask_turns_a_tokenizer_mask_into_a_course_mask():
    attention_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    mask = tnn.padding_mask(attention_mask)
    assert mask.dtype == torch.bool and mask.shape == (2, 1, 1, 3)
    assert mask[1, 0, 0].tolist() == [True, True, False]
    with pytest.raises(ValueError, match=r"\(batch, L\)"):
        tnn.padding_mask(attention_mask[None])
    with pytest.raises(ValueError, match="0 \\(padding\\) and 1"):
        tnn.padding_mask(torch.tensor([[1, 2]]))


def test_masks_are_validated_with_a_clear_error():
    x = torch.randn(3, 3, 8)
    mha = tnn.MultiHeadAttention(8, 2)
    with pytest.raises(TypeError, match="padding_mask"):
        mha(x, mask=torch.ones(3, 3, dtype=torch.long))
    # (batch, L) with batch == L used to be read silently as (Lq, Lk); now shape (batch, L) for 4 x 4 is caught
    with pytest.raises(ValueError, match="padding_mask"):
        mha(torch.randn(2, 4, 8), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(x, mask=torch.ones(3, 1, 1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(x, mask=torch.ones(3, 1, 1, 5, dtype=torch.bool), need_weights=False)


@pytest.mark.parametrize("need_weights", [True, False])
def test_causal_flag_and_padding_match_nn_multihead_attention(need_weights):
    torch.manual_seed(0)
    mine = tnn.MultiHeadAttention(16, 4, causal=True).double()
    theirs = copy_mha_to_torch(mine, nn.MultiheadAttention(16, 4, batch_first=True).double())
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    out, weights = mine(x, mask=tnn.padding_mask(keep), need_weights=need_weights)
    ref, ref_weights = theirs(x, x, x, attn_mask=~tnn.causal_mask(5), key_padding_mask=~keep.bool())
    real = keep.bool()
    torch.testing.assert_close(out[real], ref[real], **TOL)
    assert (weights is None) != need_weights
    if need_weights:
        torch.testing.assert_close(weights.mean(1)[real], ref_weights[real], **TOL)


def test_kv_cache_gives_the_same_outputs_as_the_full_sequence():
    torch.manual_seed(1)
    encoder = tnn.Encoder(2, 16, 4, 32, norm_first=True, causal=True).double().eval()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    full = encoder(x)
    cache = tnn.KVCache()
    steps = [encoder(x[:, :4], cache=cache)] + [encoder(x[:, t:t + 1], cache=cache) for t in range(4, 7)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, **TOL)
    assert len(cache) == 7 and len(cache.keys) == 2
    assert cache.nbytes() == 2 * 2 * (2 * 4 * 7 * 4) * 8  # layers * (k, v) * (batch*heads*T*d_head) * 8 bytes


def test_causal_mask_with_more_keys_than_queries_is_offset():
    assert tnn.causal_mask(2, n_keys=4).tolist() == [[True, True, True, False], [True, True, True, True]]


def test_dropout_acts_in_training_only():
    torch.manual_seed(2)
    block = tnn.TransformerBlock(16, 4, 32, dropout=0.5)
    x = torch.randn(2, 6, 16)
    block.eval()
    torch.testing.assert_close(block(x), block(x), rtol=0, atol=0)
    block.train()
    assert not torch.allclose(block(x), block(x))
    mha = tnn.MultiHeadAttention(16, 4, dropout=0.5).train()
    # attention dropout in the weights path and in the fused path: both change the output between calls
    for need_weights in (True, False):
        assert not torch.allclose(mha(x, need_weights=need_weights)[0], mha(x, need_weights=need_weights)[0])


@pytest.mark.parametrize("name,reference", [
    ("gelu", lambda x: F.gelu(x)),
    ("gelu_tanh", lambda x: 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x ** 3)))),
    ("relu", lambda x: x.clamp(min=0)),
])
def test_feed_forward_activations(name, reference):
    ff = tnn.FeedForward(4, 8, activation=name).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(ff(x), ff.linear2(reference(ff.linear1(x))), **TOL)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="gelu_tanh"):
        tnn.FeedForward(4, 8, activation="swish")


def test_bias_off_everywhere():
    block = tnn.TransformerBlock(8, 2, 16, bias=False)
    assert all("bias" not in name for name, _ in block.named_parameters())
    ln = tnn.LayerNorm(8, bias=False).double()
    x = torch.randn(2, 8, dtype=torch.float64)
    torch.testing.assert_close(ln(x), F.layer_norm(x, (8,)), **TOL)


def test_blocks_keep_attention_weights_only_when_asked():
    block = tnn.TransformerBlock(8, 2, 16)
    block(torch.randn(1, 3, 8))
    assert block.attention_weights is None
    block.keep_attention = True
    block(torch.randn(1, 3, 8))
    assert block.attention_weights.shape == (1, 2, 3, 3)


def test_attention_dropout_with_weights_multiplies_by_v_once():
    """need_weights=True with dropout: one scores product and one weights @ v product, and the same output as
    dropping the returned weights by hand with the same random state."""
    from torch.overrides import TorchFunctionMode

    class Products(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if "matmul" in getattr(func, "__name__", ""):
                self.count += 1
            return func(*args, **(kwargs or {}))

    mha = tnn.MultiHeadAttention(16, 4, dropout=0.3).train()
    x = torch.randn(2, 5, 16)
    torch.manual_seed(0)
    with Products() as products:
        out, weights = mha(x, need_weights=True)
    assert products.count == 2
    q, k, v = mha.project(x, None)
    torch.manual_seed(0)
    expected = mha.out(tnn.merge_heads(torch.nn.functional.dropout(weights, 0.3) @ v))
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("dtype, shape, base", [(torch.float64, (2, 3, 7, 8), 10000.0), (torch.float32, (5, 16), 500.0)])
def test_apply_rope_matches_llama_rotary_embedding(dtype, shape, base):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    positions = torch.tensor([4, 9, 0, 31, 2])[: shape[-2]] if shape[-2] == 5 else torch.arange(shape[-2])
    config = LlamaConfig(hidden_size=shape[-1], num_attention_heads=1, head_dim=shape[-1],
                         rope_parameters={"rope_type": "default", "rope_theta": base})
    cos, sin = LlamaRotaryEmbedding(config)(x.float(), positions[None])  # float32, as LLaMA computes them
    expected = apply_rotary_pos_emb(x, x, cos[0].to(dtype), sin[0].to(dtype), unsqueeze_dim=0)[0].reshape(x.shape)
    received = tnn.apply_rope(x, positions, base=base)
    assert received.dtype == dtype and received.shape == x.shape
    torch.testing.assert_close(received, expected, rtol=0, atol=2e-5)  # LLaMA's angles are float32
    torch.testing.assert_close(received.norm(dim=-1), x.norm(dim=-1))


def test_apply_rope_scores_depend_on_the_offset_only_and_odd_d_is_refused():
    g = torch.Generator().manual_seed(1)
    q, k = (torch.randn(64, dtype=torch.float64, generator=g).expand(30, -1) for _ in range(2))
    scores = tnn.apply_rope(q) @ tnn.apply_rope(k).T
    for offset in range(-28, 29):
        diagonal = scores.diagonal(offset)
        assert diagonal.max() - diagonal.min() < 1e-9
    torch.testing.assert_close(tnn.apply_rope(q[:1]), q[:1])  # position 0 is not rotated
    with pytest.raises(ValueError, match="even"):
        tnn.apply_rope(torch.randn(2, 4, 7))
