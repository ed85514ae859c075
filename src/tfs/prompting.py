"""Chapter 09: GPT-3's few-shot prompting on a real model, measured by scoring label words.

A classification task becomes a prompt: an instruction, ``k`` labelled examples (the *demonstrations*, or
*shots*), then the example to classify, after which the model's next token should be a label word. Nothing is
sampled: the model's next-token log-probabilities of the label words decide (Brown et al. 2020 scored
multiple-choice tasks the same way).

- :class:`Prompt`, :func:`few_shot_prompt`, :func:`chat_prompt`: prompts split into the part every query shares
  (``prefix``) and the query's own part, so that the shared part is run once.
- :func:`label_token_ids`: the single-token spellings of each label word.
- :func:`label_log_probs`: ``log P(label word | prompt)`` for many queries after one shared prefix, its keys and
  values computed once (``past_key_values``) and the queries batched.
- :func:`draw_demonstrations`, :func:`bootstrap_interval`: the draws of shots and the noise of an accuracy.
- :func:`load_icl_results`: the full measurement on SmolLM2-135M-Instruct, written by
  ``benchmarks/icl_smollm2.py``.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CHAT_INSTRUCTION", "INSTRUCTION", "SENTIMENT_WORDS", "Prompt", "bootstrap_interval", "chat_prompt",
           "draw_demonstrations", "few_shot_prompt", "label_log_probs", "label_token_ids", "load_icl_results",
           "score_texts"]

SENTIMENT_WORDS = ("negative", "positive")  # the words for label 0 (rotten) and label 1 (fresh)
INSTRUCTION = "Classify the sentiment of each movie review as positive or negative."
CHAT_INSTRUCTION = "Classify this movie review as positive or negative. Answer with one word."
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "icl_smollm2.json"


@dataclass(frozen=True)
class Prompt:
    """A prompt for one text: ``prefix + before + text + after``. ``prefix`` is the same for every text.

    The pieces are cut where the tokenizer cuts anyway (the prefix ends on a word or a special token, the query
    starts with a separator), so tokenizing the prefix and the query apart gives the tokens of the whole.
    """

    prefix: str
    before: str
    after: str

    def query(self, text: str) -> str:
        return f"{self.before}{text}{self.after}"

    def render(self, text: str) -> str:
        """The whole prompt, as the model reads it."""
        return self.prefix + self.query(text)


def few_shot_prompt(demonstrations: Sequence[tuple[str, str]], instruction: str = INSTRUCTION) -> Prompt:
    """GPT-3's format, no chat template: the instruction, then per demonstration ``(text, label word)`` a block
    ``Review: text / Sentiment: word``, then the query's block ending in ``Sentiment:``; blank lines between
    blocks. With no demonstrations it is the zero-shot instruction."""
    blocks = "".join(f"\n\nReview: {text}\nSentiment: {word}" for text, word in demonstrations)
    return Prompt(instruction + blocks, "\n\nReview: ", "\nSentiment:")


def chat_prompt(tokenizer, instruction: str = CHAT_INSTRUCTION) -> Prompt:
    """Zero-shot through the model's chat template: the instruction and the review as the user's turn, then the
    assistant's turn opened (``add_generation_prompt=True``), whose first token is scored."""
    marker = "\x00"                              # a character no review holds: where the text goes
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": f"{instruction}\n\nReview:{marker}"}],
                                             tokenize=False, add_generation_prompt=True)
    prefix, after = rendered.split(marker)
    return Prompt(prefix, " ", after)


def label_token_ids(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Per label word, the ids of its one-token spellings: lower case or capitalised, with or without a leading
    space (after ``Sentiment:`` the model writes `` positive``; opening a chat answer, ``Positive``)."""
    spellings = []
    for word in words:
        forms = (word, word.capitalize(), f" {word}", f" {word.capitalize()}")
        ids = {tuple(tokenizer.encode(form, add_special_tokens=False)) for form in forms}
        single = sorted(i[0] for i in ids if len(i) == 1)
        if not single:
            raise ValueError(f"no spelling of the label word {word!r} is a single token: score its tokens in turn, "
                             "or choose another word.")
        spellings.append(single)
    return spellings


@torch.no_grad()
def label_log_probs(model: nn.Module, prefix_ids: Sequence[int], queries: Sequence[Sequence[int]],
                    label_ids: Sequence[Sequence[int]], batch_size: int = 8) -> torch.Tensor:
    """``(N, n_labels)`` float32: log P(label | prefix + query) of the next token after each query, a label's
    probability summed over its spellings (``label_ids[j]``, a list of token ids).

    The prefix runs once; its keys and values (``past_key_values``) are repeated for each batch of queries
    (queries of similar lengths batched together, right-padded), and only each query's last real position goes through the LM head. The same numbers as
    running every ``prefix + query`` alone, at the cost of the queries' tokens.
    """
    if not queries:
        raise ValueError("label_log_probs received no queries.")
    if min(map(len, queries)) == 0:
        raise ValueError("every query needs at least one token: the next token is predicted after it.")
    was_training = model.training
    model.eval()
    prefix = torch.tensor([list(prefix_ids)], dtype=torch.int64)                  # (1, P)
    cache = model(prefix, use_cache=True).past_key_values if prefix.shape[1] else None
    head = model.get_output_embeddings()
    by_length = sorted(range(len(queries)), key=lambda i: len(queries[i]))        # batches of similar lengths pad less
    rows = []
    for start in range(0, len(queries), batch_size):
        chunk = [queries[i] for i in by_length[start:start + batch_size]]
        lengths = torch.tensor([len(q) for q in chunk])
        ids = torch.zeros((len(chunk), int(lengths.max())), dtype=torch.int64)    # (B, Q), right-padded
        mask = torch.arange(ids.shape[1])[None] < lengths[:, None]                # (B, Q)
        for row, query in enumerate(chunk):
            ids[row, :len(query)] = torch.as_tensor(list(query))
        past = None
        if cache is not None:
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(len(chunk))
        full_mask = torch.cat([torch.ones(len(chunk), prefix.shape[1], dtype=torch.int64), mask.long()], 1)
        hidden = model.base_model(input_ids=ids, attention_mask=full_mask, past_key_values=past).last_hidden_state
        last = hidden[torch.arange(len(chunk)), lengths - 1]                       # (B, H): each query's last token
        log_probs = F.log_softmax(head(last).float(), dim=-1)                      # (B, V)
        rows.append(torch.stack([log_probs[:, list(ids_j)].logsumexp(-1) for ids_j in label_ids], 1))
    model.train(was_training)
    out = torch.empty(len(queries), len(label_ids))
    out[torch.tensor(by_length)] = torch.cat(rows)
    return out


def score_texts(model: nn.Module, tokenizer, prompt: Prompt, texts: Sequence[str], words: Sequence[str],
                batch_size: int = 8) -> torch.Tensor:
    """``(N, len(words))``: :func:`label_log_probs` of ``words`` after ``prompt`` for each of ``texts``."""
    encode = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731 (the template holds its own)
    return label_log_probs(model, encode(prompt.prefix), [encode(prompt.query(t)) for t in texts],
                           label_token_ids(tokenizer, words), batch_size)


def draw_demonstrations(n_pool: int, k: int, seed: int) -> list[int]:
    """``k`` distinct indices into a pool of ``n_pool`` examples, in a random order: the draw and the order of
    one few-shot prompt (GPT-3 drew its demonstrations at random from the training set)."""
    return random.Random(seed).sample(range(n_pool), k)


def bootstrap_interval(values: torch.Tensor, n_resamples: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """The percentile interval of ``values.mean()`` when the examples are drawn again with replacement.

    ``values``: ``(N,)``, one number per test example (1/0 for right/wrong, a mean over prompts, or a paired
    difference between two prompts): the noise of having measured on these ``N`` examples and not others.
    """
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(values), (n_resamples, len(values)), generator=generator)
    means = values[picks].mean(1)
    tail = (1 - level) / 2
    return means.quantile(tail).item(), means.quantile(1 - tail).item()


def load_icl_results() -> dict:
    """The full accuracy-vs-shots measurement on SmolLM2-135M-Instruct: ``benchmarks/results/icl_smollm2.json``,
    written by ``python benchmarks/icl_smollm2.py`` (its settings, timing and load are inside)."""
    if not RESULTS.exists():
        raise FileNotFoundError(f"{RESULTS} is missing: run python benchmarks/icl_smollm2.py from the repository's root")
    return json.loads(RESULTS.read_text())
