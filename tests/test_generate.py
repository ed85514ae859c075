"""The package's decoding (tfs.generate) against transformers' generate on the same random GPT-2.

Oracles: ``GPT2LMHeadModel.generate`` (greedy, beam search, left padding, sampling statistics), transformers'
logits processors (temperature, top-k, top-p, repetition penalty) and analytic facts (cache size)."""

from __future__ import annotations

import pytest
import torch

from tfs.convert.gpt import gpt_from_hf
from tfs.generate import (apply_repetition_penalty, apply_temperature, beam_search, generate, kv_cache_bytes,
                          left_pad, position_ids_from_mask, process_logits, top_k_filter, top_p_filter)
from tfs.nn import KVCache

transformers = pytest.importorskip("transformers")
from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor,  # noqa: E402
                                                    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

VOCAB, BLOCK = 61, 48
EOS, PAD = 7, 1  # PAD not 0: transformers' beam search fills with EOS when pad_token_id is 0 (falsy)


def models(seed=0, n_layer=2, n_embd=32, n_head=4):
    """A random GPT2LMHeadModel (LayerNorms perturbed, larger weights so the distribution is peaked) and the
    package GPT holding the same weights."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=BLOCK, n_embd=n_embd, n_layer=n_layer,
                                     n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     eos_token_id=EOS, bos_token_id=EOS, pad_token_id=PAD)
    theirs = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.mul_(4.0) if ".ln_" not in name else p.add_(0.1 * torch.randn_like(p))
    theirs.generation_config.eos_token_id = EOS
    theirs.generation_config.pad_token_id = PAD
    return theirs, gpt_from_hf(theirs)


def prompts(n, low=3, high=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high, (n,), generator=g).tolist()
    # no EOS and no PAD inside prompts
    return [(torch.randint(8, VOCAB, (length,), generator=g)).tolist() for length in lengths]


def hf_generate(theirs, ids, mask, **kwargs):
    return theirs.generate(input_ids=ids, attention_mask=mask, **kwargs)


# ------------------------------------------------------------------------------------------- processors

def test_processors_match_transformers():
    g = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(6, 50, generator=g, dtype=torch.float64)
    ids = torch.randint(50, (6, 12), generator=g)
    for k in (1, 2, 5, 49, 50, 80):
        assert torch.equal(top_k_filter(logits, k), TopKLogitsWarper(k)(ids, logits))
    for p in (0.01, 0.3, 0.5, 0.9, 0.999, 1.0):
        assert torch.equal(top_p_filter(logits, p), TopPLogitsWarper(p)(ids, logits))
    for t in (0.1, 0.7, 1.0, 2.5):
        assert torch.equal(apply_temperature(logits, t), TemperatureLogitsWarper(t)(ids, logits))
    for r in (0.5, 1.0, 1.3, 3.0):
        assert torch.equal(apply_repetition_penalty(logits, ids, r), RepetitionPenaltyLogitsProcessor(r)(ids, logits))
    composed = TopPLogitsWarper(0.8)(ids, TopKLogitsWarper(10)(ids, TemperatureLogitsWarper(0.7)(
        ids, RepetitionPenaltyLogitsProcessor(1.2)(ids, logits))))
    assert torch.equal(process_logits(logits, ids, 0.7, 10, 0.8, 1.2), composed)


def test_filters_keep_the_right_sets():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[False, False, True, True]]
    # the nucleus: the fewest most likely tokens whose mass reaches top_p
    assert torch.isinf(top_p_filter(logits, 0.5)).tolist() == [[False, True, True, True]]
    assert torch.isinf(top_p_filter(logits, 0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(top_p_filter(logits, 0.94)).tolist() == [[False, False, False, True]]
    assert not torch.isinf(top_p_filter(logits, 0.96)).any()  # 0.5 + 0.3 + 0.15 < 0.96: all four
    assert not torch.isinf(top_p_filter(logits, 1.0)).any()
    # the penalty lowers a seen token whatever its sign
    penalised = apply_repetition_penalty(torch.tensor([[2.0, -2.0, 1.0]]), torch.tensor([[0, 1]]), 2.0)
    assert penalised.tolist() == [[1.0, -4.0, 1.0]]


@pytest.mark.parametrize("call, message", [
    (lambda: top_p_filter(torch.zeros(1, 3), 0.0), "top_p"),
    (lambda: top_p_filter(torch.zeros(1, 3), 1.5), "top_p"),
    (lambda: top_k_filter(torch.zeros(1, 3), 0), "top_k"),
    (lambda: process_logits(torch.zeros(1, 3), temperature=-0.5), "temperature"),
    (lambda: process_logits(torch.zeros(1, 3), repetition_penalty=0.0), "repetition_penalty"),
    (lambda: left_pad([[1, 2], []], 0), "empty"),
])
def test_bad_settings_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_prompts_and_beams_raise_clear_errors():
    _, mine = models()
    with pytest.raises(ValueError, match="empty prompt"):
        generate(mine, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="num_beams"):
        beam_search(mine, torch.tensor([[9, 10]]), 3, num_beams=0)
    with pytest.raises(ValueError, match="exceeds the context.*truncate=True"):
        generate(mine, torch.full((1, BLOCK), 9), 1)
    with pytest.raises(ValueError, match="pad on the left"):
        generate(mine, torch.tensor([[9, 10, 0]]), 2, attention_mask=torch.tensor([[1, 1, 0]]))
    long = torch.randint(8, VOCAB, (1, BLOCK + 10), generator=torch.Generator().manual_seed(0))
    out = generate(mine, long, 5, truncate=True)  # documented: keeps the prompt's last BLOCK - 5 tokens
    assert out.shape == (1, BLOCK)
    assert torch.equal(out, generate(mine, long[:, -(BLOCK - 5):], 5))


# -------------------------------------------------------------------------------------------- decoding

def test_greedy_matches_transformers_and_temperature_zero_is_greedy():
    for seed in range(2):
        theirs, mine = models(seed)
        for prompt in prompts(2, seed=seed):
            ids = torch.tensor([prompt])
            expected = hf_generate(theirs, ids, torch.ones_like(ids), do_sample=False, max_new_tokens=20)
            assert torch.equal(generate(mine, ids, 20, eos_token_id=EOS), expected)
            assert torch.equal(generate(mine, ids, 20, eos_token_id=EOS, temperature=0), expected)
            assert torch.equal(generate(mine, ids, 20, eos_token_id=EOS, use_cache=False), expected)


def test_repetition_penalty_greedy_matches_transformers():
    theirs, mine = models(1)
    for prompt in prompts(3):
        ids = torch.tensor([prompt])
        expected = hf_generate(theirs, ids, torch.ones_like(ids), do_sample=False, max_new_tokens=15,
                               repetition_penalty=1.5)
        assert torch.equal(generate(mine, ids, 15, eos_token_id=EOS, repetition_penalty=1.5), expected)


@pytest.mark.parametrize("num_beams, length_penalty, early_stopping", [
    (2, 1.0, False), (4, 0.0, False), (3, 2.0, True), (3, -1.0, "never")])
def test_beam_search_matches_transformers(num_beams, length_penalty, early_stopping):
    checked_eos = 0
    for seed in (0, 2):
        theirs, mine = models(seed)
        for prompt in prompts(3, seed=seed + 10):
            ids = torch.tensor([prompt])
            # an EOS the search meets: the third token greedy decoding would produce
            eos = generate(mine, ids, 3)[0, -1].item()
            theirs.generation_config.eos_token_id = eos
            kwargs = dict(do_sample=False, num_beams=num_beams, max_new_tokens=12, length_penalty=length_penalty,
                          early_stopping=early_stopping, num_return_sequences=2)
            expected = hf_generate(theirs, ids, torch.ones_like(ids), **kwargs)
            received = beam_search(mine, ids, 12, num_beams, length_penalty=length_penalty, eos_token_id=eos,
                                   pad_token_id=PAD, early_stopping=early_stopping, num_return_sequences=2)
            assert torch.equal(received, expected), (seed, prompt)
            checked_eos += int((expected[:, ids.shape[1]:] == eos).any())
    assert checked_eos > 0  # EOS handling was exercised


def test_beam_search_finds_a_likelier_sequence_than_greedy():
    theirs, mine = models(2)
    ids = torch.tensor([prompts(1, seed=5)[0]])
    greedy = generate(mine, ids, 10)
    beams, scores = beam_search(mine, ids, 10, 4, length_penalty=0.0, return_scores=True)

    def logprob(seq):
        with torch.no_grad():
            logp = torch.log_softmax(theirs(seq).logits[0, :-1].double(), -1)
        return logp[torch.arange(ids.shape[1] - 1, seq.shape[1] - 1), seq[0, ids.shape[1]:]].sum().item()

    assert logprob(beams) >= logprob(greedy) - 1e-4
    assert abs(logprob(beams) - scores[0].item()) < 1e-3


def test_left_padded_batch_matches_each_prompt_alone_and_transformers():
    theirs, mine = models(0)
    batch = prompts(4, low=2, high=10, seed=7)
    ids, mask = left_pad(batch, PAD)
    assert mask[:, 0].tolist() != mask[:, -1].tolist()  # really padded
    assert position_ids_from_mask(mask)[0, -1].item() == len(batch[0]) - 1
    expected = hf_generate(theirs, ids, mask, do_sample=False, max_new_tokens=16)
    for use_cache in (True, False):
        received = generate(mine, ids, 16, attention_mask=mask, eos_token_id=EOS, use_cache=use_cache)
        assert torch.equal(received, expected)
    for row, prompt in enumerate(batch):
        alone = generate(mine, torch.tensor([prompt]), 16, eos_token_id=EOS)
        n = alone.shape[1] - len(prompt)
        assert torch.equal(received[row, ids.shape[1]:ids.shape[1] + n], alone[0, len(prompt):])
    beams = beam_search(mine, ids, 10, 3, attention_mask=mask, eos_token_id=EOS, pad_token_id=PAD)
    assert torch.equal(beams, hf_generate(theirs, ids, mask, do_sample=False, num_beams=3, max_new_tokens=10))


def test_cached_and_uncached_logits_agree():
    _, mine = models(1, n_layer=3)
    ids = torch.randint(8, VOCAB, (2, 30), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full, _ = mine(ids)
        cache = KVCache()
        steps = [mine(ids[:, :10], cache=cache)[0]]
        steps += [mine(ids[:, t:t + 1], cache=cache)[0] for t in range(10, 30)]
    assert (torch.cat(steps, dim=1) - full).abs().max().item() <= 1e-5
    assert len(cache) == 30
    config = mine.config
    assert cache.nbytes() == kv_cache_bytes(config.n_layer, config.n_head, config.n_embd // config.n_head, 30, batch=2)


def test_sampling_is_seeded_and_has_the_filtered_distribution():
    theirs, mine = models(3)
    ids = torch.tensor([prompts(1, seed=2)[0]])
    settings = dict(temperature=0.8, top_k=12, top_p=0.9)
    a = generate(mine, ids, 12, generator=torch.Generator().manual_seed(5), **settings)
    b = generate(mine, ids, 12, generator=torch.Generator().manual_seed(5), **settings)
    assert torch.equal(a, b)
    with torch.no_grad():
        logits = mine(ids)[0][:, -1].double()
    exact = torch.softmax(process_logits(logits, ids, **settings), -1)[0]
    hf_exact = torch.softmax(TopPLogitsWarper(0.9)(ids, TopKLogitsWarper(12)(ids, logits / 0.8)), -1)[0]
    assert torch.allclose(exact, hf_exact)
    n = 4000
    many = ids.repeat(n, 1)
    mine_first = generate(mine, many, 1, generator=torch.Generator().manual_seed(0), **settings)[:, -1]
    torch.manual_seed(0)
    hf_first = hf_generate(theirs, many, torch.ones_like(many), do_sample=True, max_new_tokens=1, **settings)[:, -1]
    for sample in (mine_first, hf_first):
        freq = torch.bincount(sample, minlength=VOCAB).double() / n
        assert (freq[exact == 0] == 0).all()  # nothing outside the nucleus is ever drawn
        # total variation: E ~ sum sqrt(p(1-p)/n) <= 0.06 here; 0.06 is ~4 standard deviations of slack
        assert 0.5 * (freq - exact).abs().sum().item() < 0.06
    assert (exact > 0).sum() > 2  # the test drew from a real distribution


def test_generate_stops_at_eos_and_pads_finished_rows():
    theirs, mine = models(0)
    batch = prompts(6, seed=3)
    ids, mask = left_pad(batch, PAD)
    out = generate(mine, ids, 30, attention_mask=mask, eos_token_id=EOS, pad_token_id=PAD)
    new = out[:, ids.shape[1]:]
    for row in new.tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1:])
    assert torch.equal(out, hf_generate(theirs, ids, mask, do_sample=False, max_new_tokens=30))


def test_generation_speed_benchmark_runs_and_compares_equal_work():
    """``benchmarks/generation_speed.py`` on a tiny model: every variant gives the same tokens; its table is complete
    (the speed itself is measured by running the script, never tested)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "generation_speed.py"
    out = subprocess.run([sys.executable, str(script), "--layers", "1", "--width", "32", "--heads", "2", "--new", "6",
                          "--repeat", "1"], capture_output=True, text=True, check=True, timeout=300).stdout
    assert "all variants produced the same tokens: True" in out and "load average" in out
    for row in ("package generate, no cache", "package generate, KV cache", "model.generate, KV cache",
                "learner-style loop, KV cache", "KV cache, fused LayerNorm"):
        assert row in out
    assert "cache speed-up (package):" in out and "learner-style / model.generate:" in out
