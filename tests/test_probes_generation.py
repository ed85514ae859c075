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


def test_transformers_cache_is_a_course_cache_for_the_gpt_and_for_course_interface():
    """TransformersCache stands in for chapter 07's KVCache: the course GPT decodes through it as through
    tfs.nn.KVCache (the same logits, the same positions counted), and CourseInterface decodes with its DynamicCache."""
    from tfs.models.gpt import GPT, GPTConfig
    from tfs.teaching.probes_generation import TransformersCache, cached_logits

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=VOCAB, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(3))
    theirs, ours = TransformersCache(), KVCache()
    assert len(theirs) == 0
    assert torch.equal(cached_logits(gpt, ids, 4, theirs), cached_logits(gpt, ids, 4, ours))
    assert len(theirs) == len(ours) == 9 and len(theirs.transformers_cache.layers) == 2
    assert torch.equal(theirs.transformers_cache.layers[1].keys, ours.keys[1])
    model = tiny_llama()
    ids, mask = padded_batch()
    wrapped, cache = CourseInterface(model), TransformersCache()
    wrapped(ids, attention_mask=mask, cache=cache)
    assert len(cache) == ids.shape[1]  # CourseInterface used the cache's own DynamicCache
