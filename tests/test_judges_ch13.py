"""Chapter 13's judges: the solution's data passes (and the package's reference), each usual mistake fails with a
message naming it, and the visible test of the same cell names it too. Mutants are the notebook's own solution with
one line changed.

Data goes through the real collectors and a save/load round trip, as in grading. The visible tests run in a
namespace made like the notebook's (its imports, SmolLM2's tokenizer, the solution's answers).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from course import REPO
from judge_helpers import failure, run, solution_namespace
from tfs import align as ref

CHAPTER = "13-teaching-behaviour"
# hidden test -> the objects it collects (each the name of a solution object)
TESTS = {"chat_labels": ("chat_example",), "chat_turns": ("chat_example",), "pack_layout": ("pack_examples",),
         "pack_mask": ("pack_examples", "packing_mask"), "sft_loss": ("sft_loss",),
         "lora_trainable": ("add_lora_adapters",), "sft_step": ("add_lora_adapters", "sft_step"),
         "merge_adapter": ("merge_adapter",), "sequence_logprobs": ("sequence_logprobs",),
         "dpo_values": ("dpo_loss",), "dpo_gradient": ("dpo_loss",)}
# the solution cell (grade_id) that defines each object
CELL = {"chat_example": "chat_example", "pack_examples": "pack_examples", "packing_mask": "pack_examples",
        "sft_loss": "sft_loss", "add_lora_adapters": "add_lora_adapters", "sft_step": "add_lora_adapters",
        "merge_adapter": "merge_adapter", "sequence_logprobs": "sequence_logprobs", "dpo_loss": "dpo_loss"}
VISIBLE = {"chat_labels": "test_chat_labels", "chat_turns": "test_chat_turns", "pack_layout": "test_pack_layout",
           "pack_mask": "test_pack_mask", "sft_loss": "test_sft_loss", "lora_trainable": "test_lora_trainable",
           "sft_step": "test_sft_step", "merge_adapter": "test_merge_adapter",
           "sequence_logprobs": "test_sequence_logprobs", "dpo_values": "test_dpo_values",
           "dpo_gradient": "test_dpo_gradient"}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(CHAPTER, align=ref)


def _objects(namespace: dict, test: str) -> dict:
    return {name: namespace[name] for name in TESTS[test]}


@pytest.mark.parametrize("test", sorted(TESTS))
def test_solution_and_reference_pass(solution, test):
    run(f"ch13.{test}", **_objects(solution, test))
    run(f"ch13.{test}", **{name: getattr(ref, name) for name in TESTS[test]})


# (hidden test, object, old text in the solution, new text, words the hidden failure must contain,
#  words the visible test's failure must contain)
MUTANTS = [
    ("chat_labels", "chat_example", "labels[:-1] = torch.where(trained[1:], ids[1:], IGNORE_INDEX)",
     "labels = torch.where(trained, ids, IGNORE_INDEX)", "not shifted", "not shifted"),
    ("chat_labels", "chat_example",
     "trained = torch.tensor([any(s <= first < e for s, e in spans) for first, _ in encoding[\"offset_mapping\"]])",
     "trained = torch.ones(len(ids), dtype=torch.bool)", "every token", "every token"),
    ("chat_labels", "chat_example",  # held-out list 5: a reply's first token starts exactly at the reply's start
     "any(s <= first < e for s, e in spans)", "any(s < first < e for s, e in spans)",
     "first token of each reply", "first token of each reply"),
    ("chat_labels", "chat_example", "reply = message[\"content\"] + END_OF_TURN", "reply = message[\"content\"]",
     "<|im_end|> left out", "<|im_end|> left out"),
    ("chat_turns", "chat_example", "spans.append((start, start + len(reply)))",
     "spans = [(start, start + len(reply))]", "only the last", "only the last"),
    ("pack_layout", "pack_examples", "\"labels\": torch.full(shape, IGNORE_INDEX)", "\"labels\": torch.full(shape, pad_id)",
     "padding is counted", "would be counted in the loss"),
    ("pack_layout", "pack_examples", "torch.arange(stop - start)", "torch.arange(start, stop)",
     "starts again at position 0", "positions that run on"),
    ("pack_layout", "pack_examples", "        if length > block_size:\n", "        if length > 10 * block_size:\n",
     "must raise ValueError", "raise ValueError"),
    ("pack_mask", "packing_mask", "return (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]",
     "return torch.ones_like(segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]",
     "reads the chats packed before it", "ignores the segments"),
    ("pack_mask", "packing_mask", "return (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]",
     "return (segment_ids[:, :, None] == segment_ids[:, None, :])", "(rows, 1, T, T)", "(rows, 1, T, T)"),
    ("sft_loss", "sft_loss", "labels.reshape(-1), ignore_index=IGNORE_INDEX)",
     "labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction=\"sum\") / labels.numel()",
     "ALL positions", "ALL positions"),
    ("sft_loss", "sft_loss", "labels.reshape(-1), ignore_index=IGNORE_INDEX)",
     "labels.reshape(-1).clamp(min=0))", "counted as class 0", "counted as class 0"),
    ("sft_loss", "sft_loss", "labels.reshape(-1), ignore_index=IGNORE_INDEX)",
     "labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction=\"sum\")", "a sum over the labelled", "the sum over"),
    ("sft_loss", "sft_loss", "    if not bool((labels != IGNORE_INDEX).any()):\n", "    if False:\n",
     "must raise ValueError", "must raise ValueError"),
    ("lora_trainable", "add_lora_adapters", "    model.requires_grad_(False)\n", "",
     "base weights would train", "base weights would train"),
    ("lora_trainable", "add_lora_adapters", "isinstance(module, nn.Linear) and name.split(\".\")[-1] in targets",
     "isinstance(module, nn.Linear) and name.split(\".\")[-1] in (\"q\", \"k\", \"v\", \"out\")",
     "adapter matrices are missing", "expected every block's"),
    ("sft_step", "add_lora_adapters", "    model.requires_grad_(False)\n", "",
     "does not train exactly", "base weights were trained"),
    ("sft_step", "add_lora_adapters", "name.split(\".\")[-1] in targets", "name.split(\".\")[-1] in (\"q\", \"v\")",
     "does not train exactly", ""),
    ("sft_step", "sft_step", "    optimizer.zero_grad()\n", "", "not zeroed", "not zeroed"),
    ("sft_step", "sft_step", "    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group[\"params\"]], max_norm)\n",
     "", "not clipped", "not clipped"),
    ("merge_adapter", "merge_adapter", "weight += (alpha / A.shape[0]) * (B @ A)", "weight += (A.shape[0] / alpha) * (B @ A)",
     "r / alpha", "r / alpha"),
    ("merge_adapter", "merge_adapter", "weight += (alpha / A.shape[0]) * (B @ A)", "weight += B @ A",
     "not scaled", "not scaled"),
    ("merge_adapter", "merge_adapter", "weight += (alpha / A.shape[0]) * (B @ A)",
     "weight += (alpha / A.shape[0]) * (B @ A).T if weight.shape[0] == weight.shape[1] else 0", "transposed", "transposed"),
    ("sequence_logprobs", "sequence_logprobs", "return (picked * scored).sum(dim=-1)",
     "return (picked * scored).sum(dim=-1) / scored.sum(dim=-1)", "a mean over", "a mean over"),
    ("sequence_logprobs", "sequence_logprobs", "return (picked * scored).sum(dim=-1)", "return picked.sum(dim=-1)",
     "-100 were scored", "-100 scored too"),
    ("dpo_values", "dpo_loss", "loss = -F.logsigmoid(beta * (chosen - rejected)).mean()",
     "loss = -F.logsigmoid(beta * (rejected - chosen)).mean()", "signs are swapped", "signs swapped"),
    ("dpo_values", "dpo_loss", "loss = -F.logsigmoid(beta * (chosen - rejected)).mean()",
     "loss = -F.logsigmoid(beta * beta * (chosen - rejected)).mean()", "beta is applied twice", "beta applied twice"),
    ("dpo_values", "dpo_loss", "loss = -F.logsigmoid(beta * (chosen - rejected)).mean()",
     "loss = -F.logsigmoid(beta * (chosen - rejected)).sum()", "a sum over the pairs", "a sum over the pairs"),
    ("dpo_values", "dpo_loss", "return loss, beta * chosen.detach(), beta * rejected.detach()",
     "return loss, chosen.detach(), rejected.detach()", "miss beta", "chosen_rewards"),
    ("dpo_gradient", "dpo_loss", "    chosen = policy_chosen - reference_chosen.detach()\n    rejected = policy_rejected - reference_rejected.detach()\n",
     "    chosen = policy_chosen - reference_chosen\n    rejected = policy_rejected - reference_rejected\n",
     "the reference is not frozen", "the reference is not frozen"),
    # found by the mutant campaign (tests/mutants/ch13.py)
    ("chat_labels", "chat_example", "start = text.index(header + reply, cursor) + len(header)",
     "start = text.index(header + reply, cursor)", "header", "header"),
    ("chat_labels", "chat_example", "labels[:-1] = torch.where(trained[1:], ids[1:], IGNORE_INDEX)",
     "labels[:-1] = torch.where(trained[:-1], ids[1:], IGNORE_INDEX)", "token t (not t + 1)", "token t (not t + 1)"),
    ("chat_turns", "chat_example", "start = text.index(header + reply, cursor) + len(header)",
     "start = text.index(header + reply) + len(header)", "repeated reply", "repeated reply"),
    ("pack_layout", "pack_examples", "if used + length > block_size:", "if used + length >= block_size:",
     "fills what is left of a row exactly", "fills what is left of a row exactly"),
    ("pack_layout", "pack_examples", '"segment_ids": torch.full(shape, -1)}', '"segment_ids": torch.zeros(shape, dtype=torch.long)}',
     "segment id -1", "segment id -1"),
    ("sft_step", "sft_step", 'align.packed_logits(model, batch["input_ids"], batch["position_ids"], mask)',
     'align.packed_logits(model, batch["input_ids"], batch["position_ids"], None)', "without the packing mask",
     "without the block-diagonal mask"),
    ("sft_step", "sft_step", "return loss.item()", "return loss", "Python float", "as a float"),
    ("sft_step", "sft_step",
     "    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group[\"params\"]], max_norm)\n"
     "    optimizer.step()\n",
     "    optimizer.step()\n"
     "    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group[\"params\"]], max_norm)\n",
     "not clipped", "not clipped before optimizer.step()"),
    ("merge_adapter", "merge_adapter", "alpha / A.shape[0]", "alpha / A.shape[1]", "A's columns", "A's columns"),
    ("merge_adapter", "merge_adapter", "(B @ A)", "(A.T @ B.T)", "transposed (Aᵀ Bᵀ)", "transposed (Aᵀ Bᵀ)"),
    ("sequence_logprobs", "sequence_logprobs", "(picked * scored).sum(dim=-1)", "(picked * scored).mean(dim=-1)",
     "mean over all positions", "mean over all positions"),
    ("sequence_logprobs", "sequence_logprobs", "torch.log_softmax(logits, dim=-1)", "torch.log(torch.softmax(logits, dim=-1))",
     "-inf", "-inf"),
    ("sequence_logprobs", "sequence_logprobs", "torch.log_softmax(logits, dim=-1)", "torch.log_softmax(logits, dim=1)",
     "wrong dimension", "wrong dimension"),
    ("dpo_values", "dpo_loss", "chosen = policy_chosen - reference_chosen.detach()", "chosen = policy_chosen",
     "chosen response's reference", "chosen's reference"),
    ("dpo_values", "dpo_loss", "-F.logsigmoid(beta * (chosen - rejected)).mean()",
     "-beta * F.logsigmoid(chosen - rejected).mean()", "beta multiplies the log-sigmoid", "beta outside"),
    ("dpo_gradient", "dpo_loss", "beta * (chosen - rejected)", "beta * (rejected - chosen)", "wrong sign", "signs swapped"),
    ("dpo_gradient", "dpo_loss", "beta * chosen.detach(), beta * rejected.detach()", "beta * chosen, beta * rejected",
     "carry gradients", "carry gradients"),
    # the third held-out list's mistakes (/work/notes/heldout3/ch13.py), after the fixes
    ("chat_turns", "chat_example", "start = text.index(header + reply, cursor) + len(header)",
     "start = text.index(reply, cursor)", "ends an earlier turn", "ends an earlier turn"),
    ("pack_layout", "pack_examples", "        if used + length > block_size:\n            rows.append([])\n"
     "            used = 0\n        rows[-1].append(example)\n        used += length\n",
     "        for members in rows:\n            if sum(len(e[\"input_ids\"]) for e in members) + length <= block_size:\n"
     "                members.append(example)\n                break\n        else:\n            rows.append([example])\n",
     "first-fit", "first-fit"),
    ("pack_layout", "pack_examples", "if length > block_size:", "if length >= block_size:", "raised ValueError",
     "exactly block_size"),
    ("pack_mask", "packing_mask", "return (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]",
     "return ((segment_ids[:, :, None] == segment_ids[:, None, :]) & (segment_ids[:, None, :] >= 0))[:, None]",
     "no key at all", "no key at all"),
    ("sft_loss", "sft_loss",
     "return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)",
     "B, T, V = logits.shape\n    return F.cross_entropy(logits.view(B * T, V), labels.view(B * T), "
     "ignore_index=IGNORE_INDEX)", "(N, vocab)", "(N, vocab)"),
    ("sft_loss", "sft_loss",
     "return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)",
     "per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX, "
     "reduction=\"none\").reshape(labels.shape)\n    return (per_token.sum(-1) / (labels != IGNORE_INDEX).sum(-1)).mean()",
     "a mean per sequence", "a mean per chat"),
    ("lora_trainable", "add_lora_adapters", 'name.split(".")[-1] in targets', 'name.split(".")[-1] in LORA_TARGETS',
     "targets argument", "targets argument"),
    ("merge_adapter", "merge_adapter", "weight += (alpha / A.shape[0]) * (B @ A)",
     "weight = weight + (alpha / A.shape[0]) * (B @ A)", "in place", "in place"),
    ("sequence_logprobs", "sequence_logprobs", "scored = labels != IGNORE_INDEX", "scored = labels > 0",
     "token id 0", "token id 0"),
    ("dpo_values", "dpo_loss", "loss = -F.logsigmoid(beta * (chosen - rejected)).mean()",
     "loss = -torch.log(torch.sigmoid(beta * (chosen - rejected))).mean()", "F.logsigmoid computes", "logsigmoid"),    # the sweep of every stated parameter and boundary (tests/mutants/ch13.py, SWEEP)
    ("chat_labels", "chat_example", "text = tokenizer.apply_chat_template(messages, tokenize=False)",
     "text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)",
     "add_generation_prompt=True", "add_generation_prompt=True"),
    ("chat_turns", "chat_example", 'reply = message["content"] + END_OF_TURN', 'reply = message["content"] + END_OF_TURN + "\\n"',
     "the newline after the reply's <|im_end|>", "the newline after the reply's <|im_end|>"),
    ("chat_labels", "chat_example", '            reply = message["content"] + END_OF_TURN\n',
     '            message["content"] += END_OF_TURN\n            reply = message["content"]\n',
     "changed the messages it was given, in place", "changed the messages it was given, in place"),
    ("pack_layout", "pack_examples", '"input_ids": torch.full(shape, pad_id)', '"input_ids": torch.zeros(shape, dtype=torch.long)',
     "must be pad_id", "the pad_id argument"),
    ("pack_layout", "pack_examples", '"position_ids": torch.zeros(shape, dtype=torch.long)', '"position_ids": torch.zeros(shape)',
     "position_ids is torch.float32", "wrong dtype"),
    ("pack_layout", "pack_examples", "    for example in examples:\n", "    while examples:\n        example = examples.pop(0)\n",
     "changed the list of examples", "changed the list of examples"),
    ("pack_mask", "packing_mask", "return (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]",
     "s = segment_ids.squeeze()\n    return (s[..., :, None] == s[..., None, :]).unsqueeze(-3)",
     "a batch of one row", "a batch of one row"),
    ("sft_loss", "sft_loss",
     "    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)",
     "    scored = labels != IGNORE_INDEX\n    labels[~scored] = 0\n"
     "    nll = -torch.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)\n"
     "    return (nll * scored).sum() / scored.sum()", "changed the labels (or logits) it was given in place",
     "changed the labels it was given in place"),
    ("lora_trainable", "add_lora_adapters", "LoRALinear(module, r, alpha)", "LoRALinear(module)",
     "LoRALinear(module) takes its default rank 8", "LoRALinear(module) takes its defaults"),
    ("sft_step", "add_lora_adapters", "LoRALinear(module, r, alpha)", "LoRALinear(module)",
     "do not have rank r", ""),
    ("lora_trainable", "add_lora_adapters", "LoRALinear(module, r, alpha)", "LoRALinear(module, r)",
     "default alpha 16", "default alpha 16"),
    ("sft_step", "sft_step", 'group["params"]], max_norm)', 'group["params"]], 1.0)',
     "not to the max_norm argument", "clipped to 1.0, not to the max_norm argument"),
    ("sft_step", "sft_step", 'loss = sft_loss(logits, batch["labels"])', 'loss = sft_loss(logits[:, :-1], batch["labels"][:, 1:])',
     "shifted again", "shifted again"),
    ("merge_adapter", "merge_adapter", "alpha / A.shape[0]", "alpha / 8", "r is fixed at 8", "r = A.shape[0]"),
    ("merge_adapter", "merge_adapter", "weight += (alpha / A.shape[0]) * (B @ A)",
     "weight += (alpha / next(v for k, v in adapter.items() if k.endswith('.A')).shape[0]) * (B @ A)",
     "one rank for the whole adapter", "one rank for the whole adapter"),
    ("merge_adapter", "merge_adapter", "weight += (alpha / A.shape[0]) * (B @ A)",
     "A *= alpha / A.shape[0]\n                weight += B @ A", "changed the adapter it was given",
     "changed the adapter it was given"),
    ("merge_adapter", "merge_adapter", "    return model\n", "", "return the model", "return the model"),
    # the fourth held-out list's weakly named mistakes (/work/notes/heldout4/ch13-misses.md)
    ("merge_adapter", "merge_adapter", "    with torch.no_grad():\n        for key in adapter:",
     "    if True:\n        for key in adapter:", "torch.no_grad()", "torch.no_grad()"),
    ("pack_layout", "pack_examples", 'batch["segment_ids"][row, start:stop] = segment',
     'batch["segment_ids"][row, start:stop] = segment + sum(len(m) for m in rows[:row])', "run on across rows",
     "run on across rows"),
    ("pack_layout", "pack_examples", 'batch["segment_ids"][row, start:stop] = segment',
     'batch["segment_ids"][row, start:stop] = segment + 1', "start at 1", "start at 1"),
    ("sft_loss", "sft_loss", "logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)",
     "logits.view(-1, logits.shape[-1]), labels.view(-1)", "not contiguous", "not contiguous"),
    ("dpo_values", "dpo_loss", "return loss, beta * chosen.detach(), beta * rejected.detach()",
     "return loss, beta * rejected.detach(), beta * chosen.detach()", "wrong order", "wrong order"),
    ("dpo_values", "dpo_loss", "loss = -F.logsigmoid(beta * (chosen - rejected)).mean()",
     "loss = -F.logsigmoid(beta * (chosen - rejected).mean())", "mean is taken inside", "taken inside the log-sigmoid"),
    ("sft_step", "sft_step", "    optimizer.zero_grad()\n    loss.backward()\n", "    loss.backward()\n    optimizer.zero_grad()\n",
     "never moved", "in that order"),
    ("merge_adapter", "merge_adapter", "alpha / A.shape[0]", "alpha // A.shape[0]", "floor division", "floor division"),
    ("sequence_logprobs", "sequence_logprobs", "(picked * scored).sum(dim=-1)", "(picked * scored)[:, 1:].sum(dim=-1)",
     "position 0 was not scored", "position 0 not scored"),
    ("sequence_logprobs", "sequence_logprobs",
     "    picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)     # (B, T)\n",
     "    labels[~scored] = 0\n    picked = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)\n",
     "changed the labels (or logits) it was given in place", "changed the labels it was given in place"),
    ("dpo_values", "dpo_loss", "loss = -F.logsigmoid(beta * (chosen - rejected)).mean()",
     "loss = -F.logsigmoid(0.1 * (chosen - rejected)).mean()", "the beta argument is ignored", "the beta argument ignored"),
    ("dpo_values", "dpo_loss", "chosen = policy_chosen - reference_chosen.detach()",
     "chosen = policy_chosen.sub_(reference_chosen.detach())", "changed the log-probabilities it was given in place",
     "changed the log-probabilities it was given in place"),
]
IDS = [f"{m[0]}-{i}" for i, m in enumerate(MUTANTS)]


@pytest.mark.parametrize("test, name, old, new, hidden_words, visible_words", MUTANTS, ids=IDS)
def test_mutant_fails_the_hidden_test_with_the_named_mistake(solution, test, name, old, new, hidden_words, visible_words):
    namespace = solution_namespace(CHAPTER, (CELL[name], old, new), **solution["__extra__"])
    message = failure(f"ch13.{test}", **_objects(namespace, test))
    assert hidden_words in message, message


# ------------------------------------------------------------------------------------------ the visible tests

@pytest.fixture(scope="module")
def notebook_cells() -> dict[str, str]:
    notebook = nbformat.read(next((REPO / "solutions" / CHAPTER).glob("*.ipynb")), as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in notebook.cells
            if cell.metadata.get("nbgrader", {}).get("grade")}


@pytest.fixture(scope="module")
def visible_setup():
    """What the visible tests read from the notebook before them: its imports and SmolLM2's tokenizer."""
    from transformers import AutoTokenizer

    from tfs.data import smollm2_path

    setup = {}
    exec("import json, time\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
         "from tfs import align\nfrom tfs import behaviour_data as bd\nfrom tfs.teaching import probes_align as pa\n"
         "from tfs.teaching.checks import call, check_close, check_true\n", setup)
    setup["tokenizer"] = AutoTokenizer.from_pretrained(smollm2_path())
    setup["END"] = setup["tokenizer"].convert_tokens_to_ids("<|im_end|>")
    return setup


def _visible(cells: dict, grade_id: str) -> str:
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", cells[grade_id], flags=re.S)


def _run_visible(cells, setup, namespace, test) -> str | None:
    """Run the visible part of ``test``'s cell (and the cell before it when it reuses its variables); return the
    failure's message, or None when it passes."""
    scope = {**setup, **{k: v for k, v in namespace.items() if not k.startswith("__")}}
    try:
        if test == "dpo_gradient":
            exec(_visible(cells, VISIBLE["dpo_values"]), scope)
        exec(_visible(cells, VISIBLE[test]), scope)
    except AssertionError as error:
        return str(error)
    return None


@pytest.mark.parametrize("test", sorted(VISIBLE))
def test_visible_tests_pass_on_the_solution(notebook_cells, visible_setup, solution, test):
    assert _run_visible(notebook_cells, visible_setup, solution, test) is None


@pytest.mark.parametrize("test, name, old, new, hidden_words, visible_words",
                         [m for m in MUTANTS if m[5]], ids=[i for i, m in zip(IDS, MUTANTS) if m[5]])
def test_visible_test_names_the_mistake(notebook_cells, visible_setup, solution, test, name, old, new, hidden_words,
                                        visible_words):
    namespace = solution_namespace(CHAPTER, (CELL[name], old, new), **solution["__extra__"])
    message = _run_visible(notebook_cells, visible_setup, namespace, test)
    assert message is not None and visible_words in message, message
