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
"""

from __future__ import annotations

import zlib

import torch

__all__ = ["CHATML_TEMPLATE", "assistant_mask", "chat_tokenizer", "label_mistakes", "marked_template", "seeded",
           "shifted_labels", "tiny_llama", "toy_examples"]

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


def label_mistakes(input_ids: torch.Tensor, mask: torch.Tensor, end_id: int) -> dict[str, torch.Tensor]:
    """The wrong labels a learner's ``chat_example`` usually returns, keyed by what went wrong."""
    mistakes = {
        "labels that are not shifted: labels[t] must be the token AFTER position t (input_ids[t + 1])":
            torch.where(mask.bool(), input_ids, -100),
        "labels on every token: the loss would train the system prompt, the user's words and the template too":
            shifted_labels(input_ids, torch.ones_like(mask)),
        "the assistant's <|im_end|> left out: a model trained so never learns to stop":
            shifted_labels(input_ids, mask.bool() & (input_ids != end_id)),
    }
    starts = [i for i in range(len(mask)) if mask[i] and (i == 0 or not mask[i - 1])]
    if len(starts) > 1:
        last_only = torch.zeros_like(mask)
        last_only[starts[-1]:] = mask[starts[-1]:]
        mistakes["only the last assistant reply trained: every reply of the conversation is"] = \
            shifted_labels(input_ids, last_only)
    return mistakes


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
