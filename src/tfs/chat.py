"""Chat with an instruction-tuned model (chapter 12): the ChatML template by hand, a reply that stops at its turn's end.

A chat model is the same network as a base model, fine-tuned on conversations written in one fixed format.
SmolLM2-Instruct's is ChatML: every message is ``<|im_start|>{role}\\n{content}<|im_end|>\\n``; a conversation
without a system message gets a default one first; the **generation prompt** ``<|im_start|>assistant\\n`` opens
the assistant's turn, and the model ends that turn with ``<|im_end|>``. :func:`chat_prompt` writes that text
exactly as ``tokenizer.apply_chat_template(..., add_generation_prompt=True, tokenize=False)`` renders
SmolLM2's template (``tests/test_llama.py`` checks it); :func:`reply` decodes greedily with
:func:`tfs.generate.generate` and the KV cache until ``<|im_end|>``.
"""

from __future__ import annotations

import torch

from tfs.generate import generate

__all__ = ["DEFAULT_SYSTEM", "END_OF_TURN", "ROLES", "START_OF_TURN", "chat_prompt", "reply"]

START_OF_TURN, END_OF_TURN = "<|im_start|>", "<|im_end|>"
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
ROLES = ("system", "user", "assistant")


def chat_prompt(messages: list[dict[str, str]], add_generation_prompt: bool = True,
                default_system: str = DEFAULT_SYSTEM) -> str:
    """The ChatML text of ``messages`` (``[{"role": ..., "content": ...}, ...]``), SmolLM2's way.

    A conversation that does not start with a system message gets ``default_system`` first; with
    ``add_generation_prompt`` the text ends by opening the assistant's turn. Raises ``ValueError`` for a
    role other than system, user and assistant, and for an empty conversation."""
    if not messages:
        raise ValueError("a conversation needs at least one message")
    for message in messages:
        if message.get("role") not in ROLES:
            raise ValueError(f"unknown role {message.get('role')!r}: a message's role is one of {', '.join(ROLES)}")
    turns = [] if messages[0]["role"] == "system" else [{"role": "system", "content": default_system}]
    text = "".join(f"{START_OF_TURN}{m['role']}\n{m['content']}{END_OF_TURN}\n" for m in turns + list(messages))
    return text + (f"{START_OF_TURN}assistant\n" if add_generation_prompt else "")


def reply(model, tokenizer, messages: list[dict[str, str]], max_new_tokens: int = 64) -> str:
    """The model's greedy answer to ``messages``: ChatML prompt, decoding with the KV cache until ``<|im_end|>``
    (or ``max_new_tokens``), the answer's text without the end-of-turn token."""
    prompt = torch.tensor([tokenizer(chat_prompt(messages))["input_ids"]])
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    new = generate(model, prompt, max_new_tokens, eos_token_id=end)[0, prompt.shape[1]:].tolist()
    return tokenizer.decode(new[:new.index(end)] if end in new else new)
