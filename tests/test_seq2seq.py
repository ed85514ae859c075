"""The course's encoder-decoder against ``torch.nn.Transformer`` (weights copied, float64), decoding, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tfs.convert.seq2seq import seq2seq_from_torch, to_torch_transformer, torch_transformer_for
from tfs.grader.collectors.ch11 import model_inputs  # the judged inputs: padded rows with ids under the pads
from tfs.models.seq2seq import (DecoderBlock, EncoderDecoder, Seq2SeqConfig, beam_decode, greedy_decode,
                                seq2seq_loss, shift_right)


def small(norm_first=False, **kw):
    torch.manual_seed(0)
    config = Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=11, d_model=16, n_heads=4, n_encoder_layers=2,
                           n_decoder_layers=2, d_ff=24, max_len=20, norm_first=norm_first, **kw)
    return EncoderDecoder(config).double().eval()


def oracle_logits(model, src, tgt, src_mask, tgt_mask):
    """nn.Transformer (weights copied) between the model's own embeddings and output layer."""
    transformer = to_torch_transformer(model).double().eval()
    causal = torch.ones(tgt.shape[1], tgt.shape[1], dtype=torch.bool).triu(1)  # torch.nn's bool masks: True = blocked
    out = transformer(model.embed(src, "src"), model.embed(tgt, "tgt"), tgt_mask=causal,
                      src_key_padding_mask=src_mask == 0, tgt_key_padding_mask=tgt_mask == 0,
                      memory_key_padding_mask=src_mask == 0, tgt_is_causal=True)
    return model.head(out)


@pytest.mark.parametrize("norm_first", [False, True])
def test_parity_with_nn_transformer_float64(norm_first):
    model = small(norm_first)
    src, tgt, src_mask, tgt_mask = model_inputs()
    ours = model(src, tgt, src_mask, tgt_mask)
    theirs = oracle_logits(model, src, tgt, src_mask, tgt_mask)
    real = tgt_mask.bool()  # padded target queries are free to differ
    assert (ours - theirs)[real].abs().max() <= 1e-10
    assert ours.shape == (3, 5, 11)


def test_weights_round_trip_from_nn_transformer():
    model = small()
    torch.manual_seed(5)
    transformer = torch_transformer_for(model.config, dtype=torch.float64)
    seq2seq_from_torch(transformer, model)
    src, tgt, src_mask, tgt_mask = model_inputs()
    ours = model(src, tgt, src_mask, tgt_mask)
    theirs = oracle_logits(model, src, tgt, src_mask, tgt_mask)
    assert (ours - theirs)[tgt_mask.bool()].abs().max() <= 1e-10


def test_source_padding_is_masked_and_decoder_is_causal():
    model = small()
    src, tgt, src_mask, tgt_mask = model_inputs()
    base = model(src, tgt, src_mask)
    changed_src = src.clone()
    changed_src[0, 5:] = 4  # padding positions of source 0
    assert torch.allclose(model(changed_src, tgt, src_mask)[0], base[0], atol=1e-12)
    changed_tgt = tgt.clone()
    changed_tgt[:, 3] = 3  # a later target token cannot change earlier positions
    assert torch.allclose(model(src, changed_tgt, src_mask)[:, :3], base[:, :3], atol=1e-12)
    assert not torch.allclose(model(src, changed_tgt, src_mask)[:, 3:], base[:, 3:])


def test_cross_attention_takes_queries_from_decoder_and_keys_values_from_memory():
    block = DecoderBlock(8, 2, 16).double()
    block.keep_attention = True
    x, memory = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 6, 8, dtype=torch.float64)
    assert block(x, memory).shape == (2, 3, 8)
    assert block.cross_attention_weights.shape == (2, 2, 3, 6)  # (batch, heads, T, S)


def test_shift_right_and_teacher_forcing_loss():
    labels = torch.tensor([[5, 6, 2, -100], [7, 2, -100, -100]])
    assert shift_right(labels, bos_id=1, pad_id=0).tolist() == [[1, 5, 6, 2], [1, 7, 2, 0]]
    model = small()
    src, _, src_mask, _ = model_inputs()
    labels = torch.tensor([[5, 6, 2, -100], [7, 2, -100, -100], [3, 4, 5, 2]])
    loss = seq2seq_loss(model, src, src_mask, labels, bos_id=1)
    logits = model(src, shift_right(labels, 1, 0), src_mask)
    by_hand = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=-100)
    assert abs(loss.item() - by_hand.item()) < 1e-10  # padding in the decoder input cannot matter (causal)


def test_greedy_decode_matches_a_loop_by_hand_with_and_without_cache():
    model = small()
    src, _, src_mask, _ = model_inputs()
    out = greedy_decode(model, src, src_mask, bos_id=1, eos_id=2, max_new_tokens=6)
    assert torch.equal(out, greedy_decode(model, src, src_mask, 1, 2, 6, use_cache=False))
    ids = torch.ones(3, 1, dtype=torch.long)
    for _ in range(6):
        ids = torch.cat([ids, model(src, ids, src_mask)[:, -1].argmax(-1, keepdim=True)], dim=1)
    for row, hand in zip(out, ids):  # equal up to the first EOS, padded after it
        n = (hand == 2).nonzero()[0].item() + 1 if (hand == 2).any() else len(hand)
        assert row[:n].tolist() == hand[:n].tolist()


def test_beam_search_one_beam_is_greedy_and_more_beams_score_no_worse():
    model = small()
    src, _, src_mask, _ = model_inputs()
    greedy = greedy_decode(model, src, src_mask, 1, 2, 6)
    one = beam_decode(model, src, src_mask, 1, 2, 6, num_beams=1)
    assert one[:, :greedy.shape[1]].tolist() == greedy[:, :one.shape[1]].tolist()

    def log_prob(ids, i):
        ids = ids[i][None]
        n = (ids[0] == 2).nonzero()[0].item() + 1 if (ids[0] == 2).any() else ids.shape[1]
        logp = model(src[i:i + 1], ids[:, :n - 1], src_mask[i:i + 1]).log_softmax(-1)
        return logp[0].gather(-1, ids[0, 1:n, None]).sum().item()

    four = beam_decode(model, src, src_mask, 1, 2, 6, num_beams=4, length_penalty=0.0)
    for i in range(3):
        assert log_prob(four, i) >= log_prob(greedy, i) - 1e-9


def test_bad_inputs_raise_clear_errors():
    model = small()
    src, tgt, src_mask, _ = model_inputs()
    with pytest.raises(ValueError, match="source vocabulary has 13"):
        model(src + 10, tgt, src_mask)
    with pytest.raises(ValueError, match="target vocabulary"):
        model(src, tgt + 20, src_mask)
    with pytest.raises(ValueError, match="src_attention_mask"):
        model(src, tgt, src_mask[:, :4])
    with pytest.raises(ValueError, match="max_len"):
        model(src, torch.ones(3, 25, dtype=torch.long), src_mask)
    with pytest.raises(ValueError, match="one vocabulary"):
        Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=6, shared_embeddings=True)


def test_the_diagram_draws_both_stacks_and_the_cross_attention():
    import matplotlib
    matplotlib.use("Agg")
    from tfs.teaching.diagrams_applications import draw_encoder_decoder

    figure = draw_encoder_decoder(n_encoder_layers=3, n_decoder_layers=4)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert "x 3" in texts and "x 4" in texts and any("Q: decoder" in t and "K, V: memory" in t for t in texts)
