"""CourseInterface: a transformers causal LM decoded by the course's loop (tfs.generate) as model.generate decodes it.

Oracle: ``LlamaForCausalLM.generate`` on the same random weights (greedy, repetition penalty, left padding)."""

from __future__ import annotations

import pytest
import torch

from tfs.generate import generate, left_pad
from tfs.nn import KVCache
from tfs.teaching.probes_generation import CourseInterface

transformers = pytest.importorskip("transformers")

VOCAB, EOS, PAD = 50, 3, 1


def tiny_llama(seed=0):
    """A random LlamaForCausalLM with grouped-query attention, its weights scaled up so greedy choices are clear."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      eos_token_id=EOS, pad_token_id=PAD, bos_token_id=EOS, tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.mul_(4.0)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = PAD
    return model


def padded_batch():
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(5, VOCAB, (n,), generator=g).tolist() for n in (7, 3, 5)]
    return left_pad(prompts, PAD)


@pytest.mark.parametrize("penalty", [None, 1.3])
def test_left_padded_greedy_matches_model_generate(penalty):
    model = tiny_llama()
    ids, mask = padded_batch()
    ours = generate(CourseInterface(model), ids, 12, attention_mask=mask, repetition_penalty=penalty)
    theirs = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=12,
                            repetition_penalty=penalty)
    assert torch.equal(ours, theirs)


def test_with_and_without_cache_agree_and_the_cache_object_is_reused():
    model = tiny_llama(seed=2)
    wrapped = CourseInterface(model)
    ids, mask = padded_batch()
    assert torch.equal(generate(wrapped, ids, 10, attention_mask=mask),
                       generate(wrapped, ids, 10, attention_mask=mask, use_cache=False))
    cache, prompt = KVCache(), torch.tensor([[5, 6, 7, 8]])
    logits, loss = wrapped(prompt, cache=cache)
    assert logits.shape == (1, 1, VOCAB) and loss is None
    wrapped(torch.tensor([[9]]), cache=cache)
    assert cache.transformers_cache.get_seq_length() == 5
    with torch.no_grad():
        expected = model(torch.tensor([[5, 6, 7, 8, 9, 10]])).logits[:, -1]
    assert torch.allclose(wrapped(torch.tensor([[10]]), cache=cache)[0][:, -1], expected, atol=1e-5)


def test_block_size_is_the_models_context():
    assert CourseInterface(tiny_llama()).config.block_size == 64
