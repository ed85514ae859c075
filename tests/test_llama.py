"""The package's LLaMA (chapter 12) against ``transformers``: layers, whole models on small random ``LlamaConfig``s
(float32, float64, left padding, the KV cache, generation), the key map's errors, the chat template, SmolLM2 once."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.models.llama import modeling_llama  # noqa: E402

from tfs.chat import DEFAULT_SYSTEM, chat_prompt, reply  # noqa: E402
from tfs.convert.llama import (hf_config, llama_config_from_hf, llama_from_hf, load_hf_state_dict,  # noqa: E402
                               to_hf_model, to_hf_state_dict)
from tfs.generate import generate, left_pad  # noqa: E402
from tfs.models.llama import LLaMA, LLaMAConfig  # noqa: E402
from tfs.nn import KVCache, RMSNorm, SwiGLU, repeat_kv, rope, swiglu_hidden  # noqa: E402
from tfs.teaching.parity_llama import cached_logits  # noqa: E402
from tfs.teaching.probes_llama import float64_exact  # noqa: E402
from tfs.teaching.probes_rope import rope_by_complex_numbers  # noqa: E402

HF_CONFIGS = {  # transformers' own configurations, random weights: grouped-query, multi-query, multi-head
    "gqa_tied": dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=6,
                     num_key_value_heads=2, rope_theta=500.0, rms_norm_eps=1e-5, tie_word_embeddings=True),
    "mqa_untied": dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=1, rope_theta=100000.0, rms_norm_eps=1e-6, tie_word_embeddings=False),
    "mha": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
}


def random_hf(name: str, dtype=torch.float64, seed: int = 0) -> LlamaForCausalLM:
    """transformers' LlamaForCausalLM with random weights large enough for peaked attention, norm gains near 1."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=61, max_position_embeddings=64, **HF_CONFIGS[name])).to(dtype)
    with torch.no_grad():
        for key, parameter in model.named_parameters():
            noise = 0.3 * torch.randn_like(parameter)
            parameter.copy_(1 + noise if "norm" in key else noise)
    return model.eval()


def padded_batch(vocab: int = 61):
    g = torch.Generator().manual_seed(3)
    return left_pad([torch.randint(1, vocab, (n,), generator=g).tolist() for n in (9, 4, 6)], 0)


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_logits_match_llama_for_causal_lm_with_and_without_padding(name, dtype, atol):
    hf = random_hf(name, dtype)
    if dtype == torch.float64:
        float64_exact(hf)
    model = llama_from_hf(hf)
    ids = torch.randint(0, 61, (2, 13), generator=torch.Generator().manual_seed(1))
    padded, mask = padded_batch()
    rows = mask.bool()
    with torch.no_grad():
        assert (model(ids)[0] - hf(ids).logits).abs().max() <= atol
        mine, theirs = model(padded, attention_mask=mask)[0], hf(input_ids=padded, attention_mask=mask).logits
    assert (mine - theirs)[rows].abs().max() <= atol
    assert (model.lm_head.weight is model.embed.weight) == hf.config.tie_word_embeddings


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
def test_cached_decoding_matches_the_full_forward_and_stores_only_kv_heads(name):
    model = llama_from_hf(random_hf(name))
    padded, mask = padded_batch()
    cache = KVCache()
    stepped = cached_logits(model, padded, mask, 3, cache)
    with torch.no_grad():
        full = model(padded, attention_mask=mask)[0]
    assert (stepped - full)[mask.bool()].abs().max() < 1e-12
    c = model.config
    assert tuple(cache.keys[0].shape) == (3, c.n_kv_head, padded.shape[1], c.d_head) and len(cache.keys) == c.n_layer


def test_cached_keys_equal_transformers_past_key_values():
    hf = float64_exact(random_hf("gqa_tied"))
    model = llama_from_hf(hf)
    padded, mask = padded_batch()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = KVCache()
    with torch.no_grad():
        model(padded, attention_mask=mask, cache=cache)
        past = hf(input_ids=padded, attention_mask=mask, position_ids=positions, use_cache=True).past_key_values
    for mine, theirs in ((cache.keys[1], past.layers[1].keys), (cache.values[1], past.layers[1].values)):
        assert (mine - theirs)[mask.bool()[:, None, :, None].expand_as(mine)].abs().max() < 1e-12


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
def test_greedy_generation_matches_generate_on_a_left_padded_batch(name):
    hf = random_hf(name, torch.float32)
    model = llama_from_hf(hf)
    padded, mask = padded_batch()
    ours = generate(model, padded, 10, attention_mask=mask)
    theirs = hf.generate(input_ids=padded, attention_mask=mask, max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert torch.equal(ours, theirs)


def test_round_trip_through_transformers_and_the_loss():
    model = LLaMA(LLaMAConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, d_ff=48,
                              tie_embeddings=False)).eval()
    hf = to_hf_model(model)
    ids = torch.randint(0, 50, (2, 10))
    with torch.no_grad():
        logits, loss = model(ids[:, :-1], ids[:, 1:])
        theirs = hf(input_ids=ids[:, :-1], labels=ids[:, :-1].clone())
    assert (logits - theirs.logits).abs().max() < 1e-5
    shifted = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), ids[:, 1:-1].reshape(-1))
    assert abs(shifted.item() - theirs.loss.item()) < 1e-5  # transformers shifts the labels itself
    assert loss is not None and torch.isfinite(loss)
    back = llama_from_hf(hf)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    assert llama_config_from_hf(hf_config(model.config)) == model.config


# ------------------------------------------------------------------------------------------------- layers

def test_rmsnorm_matches_torch_and_llama():
    x = torch.randn(3, 5, 16, dtype=torch.float64) + 0.4
    ours = RMSNorm(16, eps=1e-5).double()
    torch.nn.init.normal_(ours.weight, 1.0, 0.3)
    oracle = torch.nn.RMSNorm(16, eps=1e-5, dtype=torch.float64)
    theirs = modeling_llama.LlamaRMSNorm(16, eps=1e-5)
    with torch.no_grad():
        oracle.weight.copy_(ours.weight)
        theirs.weight.copy_(ours.weight.float())
        assert (ours(x) - oracle(x)).abs().max() < 1e-14
        assert (ours.float()(x.float()) - theirs(x.float())).abs().max() < 1e-6
    assert [name for name, _ in ours.named_parameters()] == ["weight"]


def test_rope_matches_complex_numbers_and_transformers():
    x = torch.randn(2, 3, 7, 16, dtype=torch.float64)
    positions = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 1, 2, 3]])
    ours = rope(x, positions, 100000.0)
    assert (ours - rope_by_complex_numbers(x, positions[:, None, :], 100000.0)).abs().max() < 1e-12
    config = LlamaConfig(hidden_size=48, num_attention_heads=3, rope_theta=100000.0)
    cos, sin = modeling_llama.LlamaRotaryEmbedding(config)(x.float(), positions)
    q, _ = modeling_llama.apply_rotary_pos_emb(x.float(), x.float(), cos, sin)
    assert (rope(x.float(), positions, 100000.0) - q).abs().max() < 1e-5
    with pytest.raises(ValueError, match="odd"):
        rope(torch.ones(1, 2, 3, 5), torch.arange(3)[None], 10000.0)


def test_swiglu_matches_llama_mlp_and_the_published_widths():
    ff = SwiGLU(8, 20).double()
    mlp = modeling_llama.LlamaMLP(LlamaConfig(hidden_size=8, intermediate_size=20, num_attention_heads=1,
                                              num_key_value_heads=1)).double()
    mlp.load_state_dict({f"{name}_proj.weight": w for name, w in
                         (("gate", ff.gate.weight), ("up", ff.up.weight), ("down", ff.down.weight))})
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    with torch.no_grad():
        assert (ff(x) - mlp(x)).abs().max() < 1e-14
    assert all(module.bias is None for module in (ff.gate, ff.up, ff.down))
    # SmolLM2-135M and LLaMA 7B, 13B, 65B as published: the 4d MLP's budget, rounded up to 256
    assert [swiglu_hidden(d) for d in (576, 4096, 5120, 8192)] == [1536, 11008, 13824, 22016]


def test_repeat_kv_matches_transformers():
    x = torch.randn(2, 3, 5, 4)
    assert torch.equal(repeat_kv(x, 3), modeling_llama.repeat_kv(x, 3))
    assert torch.equal(repeat_kv(x, 1), x)


def test_flops_per_token_match_the_counter_and_the_parameter_count():
    from torch.utils.flop_counter import FlopCounterMode

    from tfs.teaching.probes_llama import mistaken_logits

    model = LLaMA(LLaMAConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, d_ff=48))
    ids = torch.randint(0, 50, (1, 12))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        mistaken_logits(model, ids)  # the functional forward: explicit Q K^T and A V
    assert counter.get_total_flops() == 12 * model.flops_per_token(12)
    with torch.device("meta"):
        assert LLaMA(LLaMAConfig()).num_params() == 134_515_008  # SmolLM2-135M


# ----------------------------------------------------------------------------------------------- errors

def test_config_and_layers_refuse_impossible_shapes():
    with pytest.raises(ValueError, match="n_kv_head"):
        LLaMAConfig(n_head=9, n_kv_head=4)
    with pytest.raises(ValueError, match="odd"):
        LLaMAConfig(n_embd=30, n_head=2, n_kv_head=1)
    with pytest.raises(ValueError, match="n_embd"):
        LLaMAConfig(n_embd=50, n_head=4, n_kv_head=2)


def test_sequences_longer_than_the_context_are_refused():
    model = LLaMA(LLaMAConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_kv_head=1, n_embd=16, d_ff=24))
    with pytest.raises(ValueError, match="block_size=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="context"):
        generate(model, torch.zeros(1, 10, dtype=torch.long), 8)
    with pytest.raises(ValueError, match="vocabulary|49|\\[0, 50\\)"):
        model(torch.full((1, 3), 50))


def test_state_dict_errors_name_the_key_and_both_shapes():
    hf = random_hf("gqa_tied")
    state = hf.state_dict()
    model = llama_from_hf(hf)
    wrong = dict(state) | {"model.layers.1.self_attn.k_proj.weight": state["model.layers.1.self_attn.q_proj.weight"]}
    with pytest.raises(ValueError, match=r"model\.layers\.1\.self_attn\.k_proj\.weight: shape \(48, 48\) does not fit "
                                         r"blocks\.1\.attn\.k\.weight of shape \(16, 48\)"):
        load_hf_state_dict(model, wrong)
    with pytest.raises(KeyError, match="missing 1 keys.*model.layers.0.mlp.up_proj.weight"):
        load_hf_state_dict(model, {k: v for k, v in state.items() if k != "model.layers.0.mlp.up_proj.weight"})
    with pytest.raises(KeyError, match="unexpected 1 keys.*q_proj.bias"):
        load_hf_state_dict(model, dict(state) | {"model.layers.0.self_attn.q_proj.bias": torch.zeros(48)})
    untied = dict(state) | {"lm_head.weight": state["model.embed_tokens.weight"] + 1}
    with pytest.raises(ValueError, match="ties them"):
        load_hf_state_dict(model, untied)
    without_head = {k: v for k, v in state.items() if k != "lm_head.weight"}  # a saved tied checkpoint
    load_hf_state_dict(model, without_head)


def test_configs_the_course_llama_cannot_express_are_refused():
    with pytest.raises(ValueError, match="biases"):
        llama_config_from_hf(LlamaConfig(hidden_size=32, num_attention_heads=4, attention_bias=True))
    scaled = LlamaConfig(hidden_size=32, num_attention_heads=4,
                         rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})
    with pytest.raises(ValueError, match="original RoPE"):
        llama_config_from_hf(scaled)


def test_float64_exact_removes_transformers_float32_steps_and_can_be_undone():
    hf = random_hf("gqa_tied")
    model = llama_from_hf(hf)
    ids = torch.randint(0, 61, (1, 12))
    with torch.no_grad():
        shipped = hf(ids).logits
        exact = float64_exact(hf)(ids).logits
        mine = model(ids)[0]
        undone = float64_exact(hf, undo=True)(ids).logits
    assert (mine - shipped).abs().max() > 1e-9  # transformers' norms and angles run in float32 even in float64
    assert (mine - exact).abs().max() < 1e-12
    assert torch.equal(undone, shipped)


# ------------------------------------------------------------------------------------------------- chat

def test_chat_prompt_refuses_unknown_roles_and_empty_conversations():
    with pytest.raises(ValueError, match="unknown role 'robot'"):
        chat_prompt([{"role": "robot", "content": "beep"}])
    with pytest.raises(ValueError, match="at least one"):
        chat_prompt([])
    text = chat_prompt([{"role": "user", "content": "Hi"}])
    assert text.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n")


# ---------------------------------------------------------------------------------------- SmolLM2, once

@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tfs.data import smollm2_path

    path = smollm2_path()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    yield path, hf, AutoTokenizer.from_pretrained(path)
    torch.set_num_threads(threads)


CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
    [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello!"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Two lines:\nname a colour."}],
]


def test_chat_prompt_equals_smollm2s_template_and_the_judges_copy_of_it(smollm2):
    import importlib.util
    from pathlib import Path

    _, _, tokenizer = smollm2
    for messages in CONVERSATIONS:
        for generation in (True, False):
            assert chat_prompt(messages, generation) == tokenizer.apply_chat_template(
                messages, add_generation_prompt=generation, tokenize=False)
    judges_file = Path(__file__).parents[1] / "autograder" / "judges" / "ch12.py"
    spec = importlib.util.spec_from_file_location("judges_ch12", judges_file)
    judges = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(judges)
    assert judges.SMOLLM2_CHAT_TEMPLATE == tokenizer.chat_template


def test_smollm2_in_the_package_llama_matches_transformers_and_answers(smollm2):
    path, hf, tokenizer = smollm2
    model = llama_from_hf(hf)
    chats = [tokenizer.apply_chat_template(m, add_generation_prompt=True)["input_ids"] for m in CONVERSATIONS]
    ids, mask = left_pad(chats, tokenizer.pad_token_id)
    rows = mask.bool()
    with torch.no_grad():
        error32 = (model(ids, attention_mask=mask)[0] - hf(input_ids=ids, attention_mask=mask).logits)[rows].abs().max()
    assert error32 <= 1e-3
    assert reply(model, tokenizer, CONVERSATIONS[0], 16) == "The capital of France is Paris."
    prompt = torch.tensor([chats[0]])
    with torch.no_grad():
        expected = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12, do_sample=False,
                               eos_token_id=None)
    assert torch.equal(generate(model, prompt, 12), expected)
    short, short_mask = left_pad([chats[0][:10], chats[2][:6]], tokenizer.pad_token_id)
    model.double()
    hf.double()
    try:
        with torch.no_grad():
            error64 = (model(short, attention_mask=short_mask)[0] - float64_exact(hf)(
                input_ids=short, attention_mask=short_mask).logits)[short_mask.bool()].abs().max()
    finally:
        float64_exact(hf, undo=True).float()
    assert error64 <= 1e-9


def test_the_diagram_draws_and_its_text_names_the_sizes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from tfs.teaching.diagrams_llama import draw_llama, llama_alt_text

    ax = draw_llama(LLaMAConfig())
    ax.figure.savefig(tmp_path / "llama.png")
    assert len(ax.patches) >= 8 and "LLaMA" in ax.get_title()
    text = llama_alt_text(LLaMAConfig())
    assert "9 query heads and 3 key/value heads" in text and "tied to the embedding" in text
