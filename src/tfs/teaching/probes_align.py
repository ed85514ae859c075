"""Oracles and small inputs for chapter 13's visible tests, hidden tests and unit tests.

- :func:`marked_template`: a ChatML template (SmolLM2's) with ``{% generation %}`` markers around each assistant
  reply and its ``<|im_end|>``. SmolLM2's own template has none, so ``transformers``' ``return_assistant_tokens_mask``
  cannot be asked of it; the marked copy renders the same text character for character (checked on every call
  of :func:`assistant_mask`), and ``transformers`` then finds the assistant's tokens itself, from the characters
  the markers enclose. That is the independent oracle of :func:`tfs.align.chat_example`.
- :func:`chat_tokenizer`: a small tokenizer with SmolLM2's chat template, for judges that must not load SmolLM2:
  the course GPT's 1,024-token byte-level BPE (shipped, :func:`tfs.data.gpt_path`) plus ``<|im_start|>`` and
  ``<|im_end|>``.
- :func:`tiny_llama`: the package's LLaMA at a tiny size, float64, every weight a seeded function of its name.
- :func:`shifted_labels`: the labels a 0/1 mask of trained tokens gives (``labels[t] = ids[t+1]`` where token
  ``t+1`` is trained), and the classic wrong versions of it that visible tests name.
- :func:`packed_rows` and :func:`segment_mask`: a packed batch written out, and ``transformers``' mask for it, for
  the tests of the training step (which must not depend on the learner's packing).
"""

from __future__ import annotations

import zlib

import torch

__all__ = ["CHATML_TEMPLATE", "assistant_mask", "chat_tokenizer", "header_labelled", "label_mistakes", "labelled_earlier",
           "marked_template", "packed_rows", "seeded", "segment_mask", "shifted_labels", "tiny_llama", "toy_examples"]

# SmolLM2-135M-Instruct's chat_template.jinja, byte for byte (tests/test_align.py compares them)
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
_TURN = "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
_MARKED_TURN = ("{{'<|im_start|>' + message['role'] + '\n'}}{% if message['role'] == 'assistant' %}"
                "{% generation %}{{message['content'] + '<|im_end|>'}}{% endgeneration %}"
                "{% else %}{{message['content'] + '<|im_end|>'}}{% endif %}{{'\n'}}")


def marked_template(template: str) -> str:
    """``template`` (SmolLM2's ChatML) with generation markers around each assistant reply and its ``<|im_end|>``."""
    if _TURN not in template:
        raise ValueError("this chat template is not SmolLM2's ChatML template: no place for the generation markers")
    return template.replace(_TURN, _MARKED_TURN)


def assistant_mask(tokenizer, messages: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids (T,), mask (T,))`` from ``transformers``: ``apply_chat_template`` with the marked template and
    ``return_assistant_tokens_mask=True``; mask 1 on the assistant's tokens. The marked template must render the
    tokenizer's own text exactly (``AssertionError`` otherwise)."""
    marked = marked_template(tokenizer.chat_template)
    plain_text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer.apply_chat_template(messages, chat_template=marked, tokenize=False) == plain_text
    out = tokenizer.apply_chat_template(messages, chat_template=marked, return_assistant_tokens_mask=True,
                                        return_dict=True)
    return torch.tensor(out["input_ids"]), torch.tensor(out["assistant_masks"])


def shifted_labels(input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``labels[t] = input_ids[t + 1]`` where ``mask[t + 1]`` is 1, else -100; the last label is -100."""
    labels = torch.full_like(input_ids, -100)
    labels[:-1] = torch.where(mask[1:].bool(), input_ids[1:], -100)
    return labels


def label_mistakes(input_ids: torch.Tensor, mask: torch.Tensor, end_id: int, received=None) -> dict[str, torch.Tensor]:
    """The wrong labels a learner's ``chat_example`` usually returns, keyed by what went wrong. Given the learner's
    labels (``received``), a mistake known by a property rather than by its values is added when they have it: an
    assistant header trained (:func:`header_labelled`)."""
    mistakes = {
        "labels that are not shifted: labels[t] must be the token AFTER position t (input_ids[t + 1])":
            torch.where(mask.bool(), input_ids, -100),
        "labels on every token: the loss would train the system prompt, the user's words and the template too":
            shifted_labels(input_ids, torch.ones_like(mask)),
        "the assistant's <|im_end|> left out: a model trained so never learns to stop":
            shifted_labels(input_ids, mask.bool() & (input_ids != end_id)),
    }
    mistakes["labels where token t (not t + 1) is the assistant's: the mask must move with the ids, "
             "labels[t] = input_ids[t + 1] where token t + 1 is the assistant's"] = \
        torch.where(mask.bool(), torch.cat([input_ids[1:], input_ids.new_tensor([-100])]), -100)
    runs = _runs(mask)
    first_left_out = mask.clone()
    for start, _ in runs:
        first_left_out[start] = 0
    mistakes["the first token of each reply not trained: a token that starts exactly at the reply's first character "
             "is the reply's (start <= offset < end, not start < offset)"] = shifted_labels(input_ids, first_left_out)
    if len(runs) > 1:
        last_only = torch.zeros_like(mask)
        last_only[runs[-1][0]:] = mask[runs[-1][0]:]
        mistakes["only the last assistant reply trained: every reply of the conversation is"] = \
            shifted_labels(input_ids, last_only)
    once, seen = torch.zeros_like(mask), set()
    for start, stop in runs:
        if tuple(input_ids[start:stop].tolist()) not in seen:
            once[start:stop] = 1
        seen.add(tuple(input_ids[start:stop].tolist()))
    if not torch.equal(once, mask):
        mistakes["a repeated reply trained only once: a reply equal to an earlier one was found at the earlier one's "
                 "place; search for each reply after the end of the previous one"] = shifted_labels(input_ids, once)
    if isinstance(received, torch.Tensor) and received.shape == input_ids.shape \
            and header_labelled(received, input_ids, mask, end_id):
        mistakes["the header <|im_start|>assistant\\n trained: the template writes it (it is the generation prompt); "
                 "each reply starts after it"] = received
    if isinstance(received, torch.Tensor) and received.shape == input_ids.shape \
            and labelled_earlier(received, input_ids, mask, end_id):
        mistakes["a reply labelled where its text also ends an earlier turn (a user turn that ends with the same "
                 "words), not where the assistant wrote it: look for each reply right after its own header "
                 "<|im_start|>assistant\\n"] = received
    return mistakes


def labelled_earlier(labels: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor, end_id: int) -> bool:
    """Whether ``labels`` leave part of an assistant reply untrained while training tokens before it that are
    neither the assistant's nor an assistant header's: the reply's text was found earlier in the conversation."""
    trained = torch.zeros_like(mask, dtype=torch.bool)
    trained[1:] = labels[:-1] != -100                      # trained[j]: token j is a target
    header = torch.zeros_like(trained)
    for start, _ in _runs(mask):
        ends = (input_ids[:start] == end_id).nonzero()
        if len(ends):
            header[int(ends[-1]) + 2:start] = True
    foreign = trained & ~mask.bool() & ~header
    for start, stop in _runs(mask):
        if not bool(trained[start:stop].all()) and bool(foreign[:start].any()):
            return True
    return False


def header_labelled(labels: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor, end_id: int) -> bool:
    """Whether ``labels`` train a token of an assistant header (``<|im_start|>assistant\\n``, the tokens between the
    previous turn's ``<|im_end|>\\n`` and the reply): the template writes those, the model does not."""
    header = torch.zeros_like(mask, dtype=torch.bool)
    for start, _ in _runs(mask):
        ends = (input_ids[:start] == end_id).nonzero()
        if len(ends):
            header[int(ends[-1]) + 2:start] = True
    return bool((labels[:-1] != -100)[header[1:]].any())


def _runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the runs of 1 in a 0/1 mask (each assistant reply with its ``<|im_end|>``)."""
    runs = []
    for i in range(len(mask)):
        if mask[i] and (i == 0 or not mask[i - 1]):
            runs.append([i, i + 1])
        elif mask[i]:
            runs[-1][1] = i + 1
    return [tuple(run) for run in runs]


def chat_tokenizer():
    """The course GPT's byte-level BPE with ``<|im_start|>``/``<|im_end|>`` added and SmolLM2's chat template."""
    from transformers import AutoTokenizer

    from tfs.data import gpt_path

    tokenizer = AutoTokenizer.from_pretrained(gpt_path())
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def seeded(name: str, shape: tuple[int, ...], seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Standard normal values, a fixed function of ``name``, ``shape`` and ``seed``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def tiny_llama(seed: int = 0, vocab_size: int = 48, tie: bool = True):
    """The package's LLaMA (2 blocks, width 32, 4 query / 2 key-value heads), float64, in evaluation mode; each
    weight seeded by its name (matrices ~ N(0, 0.2²), norms 1 + N(0, 0.1²))."""
    from tfs.models.llama import LLaMA, LLaMAConfig

    config = LLaMAConfig(vocab_size=vocab_size, block_size=128, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, d_ff=48,
                         rope_theta=10000.0, tie_embeddings=tie)
    model = LLaMA(config).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            values = seeded(name, tuple(p.shape), seed)
            p.copy_(1 + 0.1 * values if p.dim() == 1 else 0.2 * values)
    return model.eval()


def toy_examples(lengths, seed: int = 0, vocab_size: int = 48) -> list[dict]:
    """Training examples of the given lengths for a tiny model: ids in ``[4, vocab_size)``, labels (shifted) on the
    second half of each, -100 on the first half (the "prompt") and at the end."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for length in lengths:
        ids = torch.randint(4, vocab_size, (length,), generator=generator)
        labels = torch.full((length,), -100)
        labels[length // 2:-1] = ids[length // 2 + 1:]
        examples.append({"input_ids": ids, "labels": labels})
    return examples


def packed_rows(rows: list[list[dict]], block_size: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Examples in the given rows (one list per row), written out as chapter 13's Exercise 2 lays them: positions
    restart at each example, segments 0, 1, ... per row; ``pad_id``, -100, position 0 and segment -1 on padding. A
    packed batch for the tests of what comes after packing, made without the learner's ``pack_examples``."""
    out = []
    for row in rows:
        pad = block_size - sum(len(e["input_ids"]) for e in row)
        out.append({
            "input_ids": torch.cat([e["input_ids"] for e in row] + [torch.full((pad,), pad_id)]),
            "labels": torch.cat([e["labels"] for e in row] + [torch.full((pad,), -100)]),
            "position_ids": torch.cat([torch.arange(len(e["input_ids"])) for e in row] + [torch.zeros(pad)]).long(),
            "segment_ids": torch.cat([torch.full((len(e["input_ids"]),), s) for s, e in enumerate(row)]
                                     + [torch.full((pad,), -1)])})
    return {key: torch.stack([row[key] for row in out]) for key in out[0]}


def segment_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """``(rows, T)`` segment ids -> ``(rows, 1, T, T)`` bool from ``transformers``' packed-sequence mask function
    (True where query and key have the same segment id): the oracle of a packing mask."""
    from transformers.masking_utils import packed_sequence_mask_function

    rows, length = segment_ids.shape
    positions = torch.arange(length)
    return packed_sequence_mask_function(segment_ids)(torch.arange(rows)[:, None, None, None], 0,
                                                      positions[:, None], positions[None, :])
