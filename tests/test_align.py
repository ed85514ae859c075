"""Chapter 13's package code (:mod:`tfs.align`, :mod:`tfs.behaviour_data`, :mod:`tfs.convert.lora`) against
independent oracles: ``transformers``' assistant-token mask and ``LlamaForCausalLM``, ``peft``, ``scipy``, and
direct computations written out here; and the shipped adapters, their cards and their size."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from torch.nn import functional as F

from tfs import align
from tfs import behaviour_data as bd
from tfs.compress import LoRALinear
from tfs.convert.llama import to_hf_model
from tfs.convert.lora import from_peft_state_dict, load_adapter, load_lora_state, save_adapter, to_peft_state_dict
from tfs.teaching import probes_align as pa

CONVERSATIONS = [
    [{"role": "user", "content": "Hi there, 12 apples?"}, {"role": "assistant", "content": "Hello!\nYes: 12."}],
    [{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": "Movie: Heat\nReview: Long."},
     {"role": "assistant", "content": '{"movie": "Heat", "sentiment": "negative"}'}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b c"}, {"role": "user", "content": "d"},
     {"role": "assistant", "content": "e, f."}, {"role": "user", "content": "g"}],
]


@pytest.fixture(scope="module")
def smol_tokenizer():
    from transformers import AutoTokenizer

    from tfs.data import smollm2_path

    return AutoTokenizer.from_pretrained(smollm2_path())


def _hf_pair(seed=0):
    """The package's tiny LLaMA and the same weights in ``LlamaForCausalLM`` (float64)."""
    model = pa.tiny_llama(seed)
    return model, to_hf_model(model).double().eval()


# ------------------------------------------------------------------------------------------ chat data

def test_the_copied_template_is_smollm2s_and_the_marked_one_renders_the_same(smol_tokenizer):
    from tfs.data import smollm2_path

    assert (smollm2_path() / "chat_template.jinja").read_text() == pa.CHATML_TEMPLATE == smol_tokenizer.chat_template
    for messages in CONVERSATIONS:
        assert (smol_tokenizer.apply_chat_template(messages, tokenize=False)
                == smol_tokenizer.apply_chat_template(messages, chat_template=pa.marked_template(pa.CHATML_TEMPLATE),
                                                      tokenize=False))
    with pytest.raises(ValueError, match="not SmolLM2's ChatML"):
        pa.marked_template("{{ messages }}")


@pytest.mark.parametrize("which", ["smollm2", "small"])
def test_chat_example_labels_match_transformers_assistant_mask(which, smol_tokenizer):
    tokenizer = smol_tokenizer if which == "smollm2" else pa.chat_tokenizer()
    chats = CONVERSATIONS + [c["messages"] for c in bd.review_chats("validation", 3)]
    for messages in chats:
        example = align.chat_example(tokenizer, messages)
        ids, mask = pa.assistant_mask(tokenizer, messages)
        assert torch.equal(example["input_ids"], ids)
        expected = torch.full_like(ids, -100)
        for t in range(len(ids) - 1):
            if mask[t + 1]:
                expected[t] = ids[t + 1]
        assert torch.equal(example["labels"], expected)
        assert example["labels"].dtype == torch.int64


def test_chat_example_trains_each_reply_and_its_end_of_turn(smol_tokenizer):
    example = align.chat_example(smol_tokenizer, CONVERSATIONS[2])
    trained = smol_tokenizer.decode(example["labels"][example["labels"] != -100])
    assert trained == "b c<|im_end|>e, f.<|im_end|>"


# ------------------------------------------------------------------------------------------ packing

def test_packed_loss_equals_transformers_on_each_example_alone():
    model, hf_model = _hf_pair()
    examples = pa.toy_examples([7, 5, 11, 3, 9, 6])
    packed = align.pack_examples(examples, 16, pad_id=1)
    assert packed["input_ids"].shape == (3, 16)   # [7, 5] [11, 3] [9, 6]
    logits = align.packed_logits(model, packed["input_ids"], packed["position_ids"],
                                 align.packing_mask(packed["segment_ids"]))
    packed_sum = F.cross_entropy(logits.reshape(-1, 48), packed["labels"].reshape(-1), reduction="sum")
    alone = sum(F.cross_entropy(hf_model(e["input_ids"][None]).logits[0], e["labels"], reduction="sum")
                for e in examples)
    assert abs(packed_sum.item() - alone.item()) < 1e-6   # transformers computes RoPE's angles in float32
    without_mask = align.packed_logits(model, packed["input_ids"], packed["position_ids"], None)
    leaked = F.cross_entropy(without_mask.reshape(-1, 48), packed["labels"].reshape(-1), reduction="sum")
    assert abs(leaked.item() - alone.item()) > 1e-3   # without the block-diagonal mask chats read each other


def test_pack_layout_positions_padding_and_errors():
    packed = align.pack_examples(pa.toy_examples([3, 4, 5]), 8, pad_id=1)
    assert packed["segment_ids"].tolist() == [[0, 0, 0, 1, 1, 1, 1, -1], [0, 0, 0, 0, 0, -1, -1, -1]]
    assert packed["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 0], [0, 1, 2, 3, 4, 0, 0, 0]]
    assert packed["input_ids"][0, -1] == 1 and bool((packed["labels"][packed["segment_ids"] < 0] == -100).all())
    with pytest.raises(ValueError, match="does not fit"):
        align.pack_examples(pa.toy_examples([9]), 8, pad_id=1)
    padded = align.pad_examples(pa.toy_examples([3, 5]), pad_id=1)
    assert padded["input_ids"].shape == (2, 5) and padded["segment_ids"][0].tolist() == [0, 0, 0, -1, -1]


def test_the_tests_packed_rows_and_mask_are_the_packages():
    examples = pa.toy_examples([7, 5, 11, 3, 9, 6])
    packed = align.pack_examples(examples, 16, pad_id=1)                          # [7, 5] [11, 3] [9, 6]
    written = pa.packed_rows([examples[:2], examples[2:4], examples[4:]], 16, pad_id=1)
    assert written.keys() == packed.keys() and all(torch.equal(written[k], packed[k]) for k in packed)
    assert torch.equal(pa.segment_mask(packed["segment_ids"]), align.packing_mask(packed["segment_ids"]))


def test_labelled_logits_are_the_full_logits_at_labelled_positions():
    model, _ = _hf_pair(1)
    batch = align.pack_examples(pa.toy_examples([6, 7, 9]), 16, pad_id=1)
    full = align.packed_logits(model, batch["input_ids"], batch["position_ids"], align.packing_mask(batch["segment_ids"]))
    logits, labels = align.labelled_logits(model, batch)
    where = batch["labels"] != -100
    assert torch.allclose(logits, full[where], atol=1e-12) and torch.equal(labels, batch["labels"][where])


# ------------------------------------------------------------------------------------------ SFT

def test_sft_loss_is_the_mean_over_labelled_tokens():
    logits = torch.randn(2, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([[-100, 2, 3, -100, -100], [1, -100, -100, 6, -100]])
    terms = [-torch.log_softmax(logits[b, t], -1)[labels[b, t]] for b in range(2) for t in range(5) if labels[b, t] >= 0]
    assert abs(align.sft_loss(logits, labels).item() - torch.stack(terms).mean().item()) < 1e-12
    with pytest.raises(ValueError, match="nothing to learn"):
        align.sft_loss(logits, torch.full_like(labels, -100))


def test_lora_trains_only_adapters_and_keeps_the_base_bit_identical():
    model, _ = _hf_pair(2)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    batch = align.pack_examples(pa.toy_examples([6, 7, 9]), 16, pad_id=1)
    with torch.no_grad():
        before = align.packed_logits(model, batch["input_ids"], batch["position_ids"])
    parameters = align.add_lora_adapters(model, r=2, alpha=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"blocks.{i}.{m}.{x}" for i in range(2) for m in
                         ("attn.q", "attn.k", "attn.v", "attn.out", "ff.gate", "ff.up", "ff.down") for x in "AB"}
    assert len(parameters) == len(trainable)
    with torch.no_grad():   # B = 0: the wrapped model starts as the base
        assert torch.equal(align.packed_logits(model, batch["input_ids"], batch["position_ids"]), before)
    optimizer = torch.optim.AdamW(parameters, lr=0.05)
    losses = [align.sft_step(model, batch, optimizer) for _ in range(4)]
    assert losses[-1] < losses[0]
    state = model.state_dict()
    for key, value in base.items():
        assert torch.equal(state[key.replace(".weight", ".base.weight") if key.replace(".weight", ".base.weight") in state
                                 else key], value)
    assert any(bool(p.abs().sum() > 0) for n, p in model.named_parameters() if n.endswith(".B"))


def test_merge_adapter_equals_the_wrapped_model_and_peft_merge(tmp_path):
    from peft import PeftModel

    model, hf_model = _hf_pair(3)
    plain, _ = _hf_pair(3)
    align.add_lora_adapters(model, r=2, alpha=6)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith((".A", ".B")):
                p.copy_(0.3 * pa.seeded(name, tuple(p.shape)))
    adapter = align.lora_state_dict(model)
    align.merge_adapter(plain, adapter, alpha=6)
    ids = torch.randint(0, 48, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(plain(ids)[0], model(ids)[0], atol=1e-10)
    save_adapter(adapter, tmp_path, r=2, alpha=6, base_model="tiny", dtype=torch.float64)
    merged = PeftModel.from_pretrained(hf_model, tmp_path).double().merge_and_unload()
    assert torch.allclose(merged.model.layers[1].mlp.down_proj.weight, plain.blocks[1].ff.down.weight, atol=1e-10)


def test_adapter_files_load_in_peft_and_back(tmp_path):
    from peft import PeftModel

    model, hf_model = _hf_pair(4)
    align.add_lora_adapters(model, r=2, alpha=4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".B"):
                p.copy_(0.2 * pa.seeded(name, tuple(p.shape)))
    files = save_adapter(align.lora_state_dict(model), tmp_path, r=2, alpha=4, base_model="tiny")
    assert [f.name for f in files] == ["adapter_config.json", "adapter_model.safetensors"]
    adapter, config = load_adapter(tmp_path)
    assert config == {"r": 2, "alpha": 4.0, "targets": ["down", "gate", "k", "out", "q", "up", "v"]}
    load_lora_state(model, adapter)   # the float16 values the file holds
    peft_model = PeftModel.from_pretrained(hf_model, tmp_path).double()
    ids = torch.randint(0, 48, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(peft_model(ids).logits, model(ids)[0], atol=1e-6)   # RoPE's angles in float32 there
    state = align.lora_state_dict(model)
    assert from_peft_state_dict(to_peft_state_dict(state)).keys() == state.keys()
    with pytest.raises(KeyError):
        to_peft_state_dict({"embed.A": torch.zeros(1)})
    with pytest.raises(KeyError, match="does not fit"):
        load_lora_state(model, {"blocks.0.attn.q.C": torch.zeros(1)})


# ------------------------------------------------------------------------------------------ DPO

def test_sequence_logprobs_equal_the_product_of_next_token_probabilities():
    model, hf_model = _hf_pair(5)
    prompt, response = [5, 9, 11, 4], [7, 30, 2]
    ids = torch.tensor(prompt + response)
    labels = torch.full_like(ids, -100)
    labels[len(prompt) - 1:-1] = ids[len(prompt):]
    with torch.no_grad():
        value = align.sequence_logprobs(model(ids[None])[0], labels[None])
        direct = sum(torch.log_softmax(hf_model(torch.tensor([prompt + response[:k]])).logits[0, -1], -1)[token]
                     for k, token in enumerate(response))
    assert abs(value.item() - direct.item()) < 1e-6   # transformers computes RoPE's angles in float32
    batch = align.pack_examples([{"input_ids": ids, "labels": labels}, *pa.toy_examples([5, 6])], 32, pad_id=1)
    with torch.no_grad():
        per_example = align.batch_logprobs(model, batch)
    assert per_example.shape == (3,) and abs(per_example[0].item() - value.item()) < 1e-9


def test_dpo_loss_formula_rewards_and_gradient_sign():
    generator = torch.Generator().manual_seed(6)
    pc, pr, rc, rr = (-20 + torch.randn(5, dtype=torch.float64, generator=generator) for _ in range(4))
    pc.requires_grad_(True)
    rc.requires_grad_(True)
    loss, chosen, rejected = align.dpo_loss(pc, pr, rc, rr, beta=0.3)
    z = 0.3 * ((pc - rc) - (pr - rr))
    assert abs(loss.item() - (-torch.log(torch.sigmoid(z))).mean().item()) < 1e-12
    assert torch.allclose(chosen, 0.3 * (pc - rc)) and torch.allclose(rejected, 0.3 * (pr - rr))
    loss.backward()
    assert bool((pc.grad < 0).all()) and rc.grad is None   # raising the chosen lowers the loss; the reference is constant


def test_reference_is_the_base_with_adapters_off_and_kl_is_exact():
    model, _ = _hf_pair(7)
    batch = align.pad_examples(pa.toy_examples([6, 9, 4]), pad_id=1)
    with torch.no_grad():
        base = align.batch_logprobs(model, batch)
    align.add_lora_adapters(model, r=2, alpha=4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".B"):
                p.copy_(0.3 * pa.seeded(name, tuple(p.shape)))
    (reference,) = align.reference_logprobs(model, [batch])
    assert torch.allclose(reference, base, atol=1e-12) and not reference.requires_grad
    assert all(m.scale == 2.0 for m in model.modules() if isinstance(m, LoRALinear))   # switched back on
    kl = align.token_kl(model, batch)
    policy, _ = align.labelled_logits(model, batch)
    with align.adapters_off(model):
        ref_logits, _ = align.labelled_logits(model, batch)
    p, q = torch.softmax(policy, -1), torch.softmax(ref_logits, -1)
    assert torch.allclose(kl, (p * (p.log() - q.log())).sum(-1), atol=1e-10) and bool((kl > 0).all())


def test_a_dpo_step_raises_the_margin_on_its_pairs():
    model, _ = _hf_pair(8)
    chosen = align.pad_examples(pa.toy_examples([6, 7], seed=1), pad_id=1)
    rejected = align.pad_examples(pa.toy_examples([9, 8], seed=2), pad_id=1)
    reference = align.reference_logprobs(model, [chosen, rejected])
    align.add_lora_adapters(model, r=2, alpha=4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.02)
    first = align.dpo_step(model, chosen, rejected, tuple(reference), optimizer, beta=0.5)
    second = align.dpo_step(model, chosen, rejected, tuple(reference), optimizer, beta=0.5)
    assert first["margin"] == 0.0 and abs(first["loss"] - math.log(2)) < 1e-12   # at the start policy = reference
    assert second["margin"] > 0 and second["loss"] < first["loss"]


# ------------------------------------------------------------------------------------------ replies, helpers, data

def test_batched_replies_equal_one_at_a_time_greedy_decoding():
    from tfs.generate import generate

    tokenizer = pa.chat_tokenizer()
    model = pa.tiny_llama(9, vocab_size=len(tokenizer))
    chats = [[{"role": "user", "content": "hello there"}], [{"role": "user", "content": "a much longer question, is it?"}]]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    alone = []
    for chat in chats:
        prompt = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))["input_ids"]
        new = generate(model, torch.tensor([prompt]), 6, eos_token_id=end)[0, len(prompt):].tolist()
        alone.append(tokenizer.decode(new[:new.index(end)] if end in new else new))
    assert align.replies(model, tokenizer, chats, max_new_tokens=6) == alone


def test_wilson_interval_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n in ((0, 40), (17, 40), (250, 250), (123, 250)):
        ci = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert align.wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-4)


def test_training_flops_count():
    assert align.training_flops(100, 0, 10, lora=False) == 6000
    assert align.training_flops(100, 5, 10, lora=True) == 10 * (400 + 30)


def test_review_task_and_scoring():
    row = {"text": "Superb.", "label": 1, "movie": "a_grin_without_a_cat"}
    reply = bd.review_reply(row)
    assert reply == '{"movie": "A Grin Without A Cat", "sentiment": "positive"}'
    assert bd.score_review(reply, row) == {"json": True, "schema": True, "movie": True, "sentiment": True}
    assert bd.score_review('{"movie": "A Grin Without A Cat", "sentiment": "negative"}', row)["sentiment"] is False
    assert bd.score_review('{"sentiment": "positive"}', row) == {"json": True, "schema": False, "movie": False,
                                                                "sentiment": False}
    assert bd.score_review("Positive!", row)["json"] is False
    chats = bd.review_chats("train", 5, seed=1)
    assert [c["messages"][2]["content"] for c in chats] == [bd.review_reply(c["row"]) for c in chats]
    assert chats[0]["messages"][1]["content"].startswith("Movie: ")
    assert bd.score_general("It is Paris.", ("paris",)) and not bd.score_general("Parisian", ("paris",))


def test_preference_rule_and_splits():
    pair = bd.preference_pair("q", "Bread is made from flour and water. It rises with yeast. And then it is ba")
    assert pair == {"prompt": "q", "chosen": "Bread is made from flour and water.",
                    "rejected": "Bread is made from flour and water. It rises with yeast."}
    assert bd.preference_pair("q", "Sure! Bread is made from flour and water.") is None   # first sentence too short
    assert bd.preference_pair("q", "Bread is made from flour and water.") is None           # one sentence only
    assert bd.sentence_ends("It costs 3.5 euros. Really!") == [19, 27]
    train, test = bd.brevity_prompts("train"), bd.brevity_prompts("test")
    assert len(set(bd.TOPICS)) == len(bd.TOPICS) and len(train) + len(test) == 4 * len(bd.TOPICS)
    assert not {p for p in train} & {p for p in test}


# ------------------------------------------------------------------------------------------ the shipped adapters

ADAPTERS = {"sft-review-json": 2.6e6, "dpo-brief": 1.3e6}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_shipped_adapter_card_size_and_checksums(name):
    from tfs import data

    folder = {"sft-review-json": data.sft_adapter_path, "dpo-brief": data.dpo_adapter_path}[name]()
    weights = folder / "adapter_model.safetensors"
    assert weights.stat().st_size <= ADAPTERS[name]
    adapter, config = load_adapter(folder)
    assert config["targets"] == ["down", "gate", "k", "out", "q", "up", "v"]
    assert all(v.shape[0 if k.endswith(".A") else 1] == config["r"] for k, v in adapter.items())
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nbase_model: \"HuggingFaceTB/SmolLM2-135M-Instruct\"\nlibrary_name: \"peft\"")
    summary = json.loads((folder / "eval.json").read_text())["summary"]
    assert summary["wall_seconds"] > 0 and summary["trainable"] == sum(v.numel() for v in adapter.values())


def test_all_chapter_13_files_fit_their_budget():
    """Chapter 13's two folders together within a fifth of the 25 MB that every course checkpoint shares."""
    from tfs import data

    total = sum(p.stat().st_size for f in (data.sft_adapter_path(), data.dpo_adapter_path()) for p in f.iterdir())
    assert total <= 5.0e6


def test_dpo_step_with_the_chosen_nll_and_labelled_counts():
    model, _ = _hf_pair(10)
    chosen = align.pad_examples(pa.toy_examples([6, 9], seed=3), pad_id=1)
    rejected = align.pad_examples(pa.toy_examples([8, 7], seed=4), pad_id=1)
    assert align.labelled_counts(chosen).tolist() == [2.0, 4.0]          # labels on the second half, less the last
    with torch.no_grad():
        expected_nll = -(align.batch_logprobs(model, chosen) / torch.tensor([2.0, 4.0])).mean().item()
    reference = align.reference_logprobs(model, [chosen, rejected])
    align.add_lora_adapters(model, r=2, alpha=4)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    values = align.dpo_step(model, chosen, rejected, tuple(reference), optimizer, beta=0.5, nll_weight=1.0)
    assert abs(values["nll"] - expected_nll) < 1e-9 and abs(values["loss"] - math.log(2)) < 1e-12


@pytest.mark.parametrize("nll_weight", [0.0, 0.7])
def test_a_dpo_step_descends_dpo_plus_the_weighted_chosen_nll(nll_weight):
    """The update of one plain SGD step (lr 1, no clipping) is minus the gradient of the DPO loss plus ``nll_weight``
    times the chosen responses' mean NLL per token, both written out here from the full logits."""
    model, _ = _hf_pair(12)
    chosen = align.pad_examples(pa.toy_examples([7, 10], seed=5), pad_id=1)
    rejected = align.pad_examples(pa.toy_examples([9, 6], seed=6), pad_id=1)
    reference = align.reference_logprobs(model, [chosen, rejected])
    align.add_lora_adapters(model, r=2, alpha=4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".B"):
                p.copy_(0.2 * pa.seeded(name, tuple(p.shape)))
    parameters = [p for p in model.parameters() if p.requires_grad]

    def response_logprobs(batch):   # (rows,) sum and count of log p(label) over each row's labelled positions
        logits = model(batch["input_ids"])[0]
        labels = batch["labels"]
        scored = labels != -100
        picked = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
        return (picked * scored).sum(-1), scored.sum(-1)

    (pc, counts), (pr, _) = response_logprobs(chosen), response_logprobs(rejected)
    z = 0.5 * ((pc - reference[0]) - (pr - reference[1]))
    objective = -F.logsigmoid(z).mean() + nll_weight * (-(pc / counts).mean())
    expected = torch.autograd.grad(objective, parameters)
    before = [p.detach().clone() for p in parameters]
    align.dpo_step(model, chosen, rejected, tuple(reference), torch.optim.SGD(parameters, lr=1.0), beta=0.5,
                   max_norm=1e9, nll_weight=nll_weight)
    for p, start, g in zip(parameters, before, expected):
        assert torch.allclose(start - p.detach(), g, atol=1e-10)


def test_memory_accounting_and_removing_adapters():
    model, _ = _hf_pair(11)
    n_weights = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, 48, (2, 12), generator=torch.Generator().manual_seed(2))
    model.requires_grad_(True)
    full = align.saved_activation_bytes(model, lambda: model(ids))
    model.requires_grad_(False)
    assert align.saved_activation_bytes(model, lambda: model(ids)) == 0      # nothing to differentiate: nothing saved
    align.add_lora_adapters(model, r=2, alpha=4)
    lora = align.saved_activation_bytes(model, lambda: model(ids))
    assert 0 < lora < full
    state = align.training_state_bytes(model)
    n_lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert state == {"weights": 8 * (n_weights + n_lora), "gradients": 8 * n_lora, "adam": 16 * n_lora}
    align.remove_adapters(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == n_weights


# ------------------------------------------------------------------------------------------ the scripts, end to end

def _script(name: str):
    import importlib
    import sys

    from course import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    return importlib.import_module(name)


@pytest.mark.slow
def test_train_dpo_script_runs_end_to_end_with_the_nll_term(tmp_path):
    """Two steps on a few of the shipped pairs, measured on two general questions: the card's loss row, the log's NLL
    series, the checksums, and the adapter that the folder holds loads back."""
    from tfs.data import dpo_adapter_path

    records = [json.loads(line) for line in (dpo_adapter_path() / "pairs.jsonl").read_text().splitlines()]
    few = [r for r in records if r["split"] == "train" and r["pair"]][:4] + \
          [r for r in records if r["split"] == "test" and r["pair"]][:2]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in few))
    out = tmp_path / "run"
    result = _script("train_dpo").main(["--steps", "2", "--pairs-per-step", "2", "--pairs", str(pairs),
                                        "--nll-weight", "0.5", "--general", "2", "--out", str(out)])
    card = (out / "README.md").read_text()
    assert "| loss | DPO with beta 0.1 + 0.5 x the chosen responses' mean negative log-likelihood per token |" in card
    log = json.loads((out / "train_log.json").read_text())
    assert len(log["nll"]) == len(log["loss"]) == 2 and log["loss"][0] == pytest.approx(math.log(2), abs=1e-6)
    assert result["summary"]["test_pairs"] == 2 and result["summary"]["train_pairs"] == 4
    assert [g["question"] for g in result["eval"]["general"]] == [q for q, _ in bd.GENERAL_QUESTIONS[:2]]
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    adapter, config = load_adapter(out)
    assert config["r"] == 2 and sum(v.numel() for v in adapter.values()) == result["summary"]["trainable"]
    with pytest.raises(SystemExit, match="not empty"):
        _script("train_dpo").main(["--steps", "1", "--pairs", str(pairs), "--out", str(out)])
