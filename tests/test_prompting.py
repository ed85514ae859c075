"""Chapter 09's few-shot prompts and label scoring (tfs.prompting), and the saved SmolLM2 measurement.

Oracles: a plain forward pass over the whole prompt (no cache, no batching, no padding), the tokenizer's own
chat template and tokenization of the whole string, and the normal approximation of a binomial proportion.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tfs import prompting
from tfs.data import gpt_path, load_dataset, smollm2_path


@pytest.fixture(scope="module")
def gpt():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(gpt_path()).eval(), AutoTokenizer.from_pretrained(gpt_path())


@pytest.fixture(scope="module")
def smol_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_path())


@pytest.fixture(scope="module")
def results():
    return prompting.load_icl_results()


def whole_prompt_log_probs(model, ids, label_ids):
    """The oracle: one forward pass over the whole prompt, the last position's log-softmax."""
    with torch.no_grad():
        log_probs = F.log_softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
    return torch.stack([log_probs[j].logsumexp(-1) for j in label_ids]).float()


@pytest.mark.parametrize("prefix_length", [0, 7])
def test_cached_batched_scores_equal_one_pass_over_each_whole_prompt(gpt, prefix_length):
    model, _ = gpt
    generator = torch.Generator().manual_seed(prefix_length)
    prefix = torch.randint(0, 1000, (prefix_length,), generator=generator).tolist()
    queries = [torch.randint(0, 1000, (n,), generator=generator).tolist() for n in (5, 1, 9, 3, 6)]
    label_ids = [[11, 12], [13], [500, 501, 502]]
    got = prompting.label_log_probs(model, prefix, queries, label_ids, batch_size=2)   # padded batches, shuffled order
    expected = torch.stack([whole_prompt_log_probs(model, prefix + q, label_ids) for q in queries])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_scoring_runs_in_eval_mode_without_gradients_and_restores_the_mode(gpt):
    model, _ = gpt
    seen = []
    hook = model.register_forward_hook(lambda m, a, o: seen.append((m.training, torch.is_grad_enabled())))
    model.train()
    try:
        prompting.label_log_probs(model, [1, 2, 3], [[4, 5]], [[6]])
    finally:
        hook.remove()
    assert seen and not any(training or grad for training, grad in seen)
    assert model.training
    model.eval()


def test_score_texts_equals_the_rendered_prompt_scored_whole(gpt):
    model, tokenizer = gpt
    prompt = prompting.few_shot_prompt([("A gripping, funny film.", "positive"), ("Dull.", "negative")])
    texts = ["Far too long.", "A delight from start to finish, and never once cute."]
    words = ("love", "death")                      # single tokens in the course GPT's 1,024-token vocabulary
    got = prompting.score_texts(model, tokenizer, prompt, texts, words)
    label_ids = prompting.label_token_ids(tokenizer, words)
    expected = torch.stack([whole_prompt_log_probs(model, tokenizer.encode(prompt.render(t)), label_ids) for t in texts])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_few_shot_prompt_is_gpt3_format_and_zero_shots_is_the_instruction():
    prompt = prompting.few_shot_prompt([("Good.", "positive")], instruction="Classify.")
    assert prompt.render("Bad.") == "Classify.\n\nReview: Good.\nSentiment: positive\n\nReview: Bad.\nSentiment:"
    assert prompting.few_shot_prompt([], instruction="Classify.").render("Bad.") == "Classify.\n\nReview: Bad.\nSentiment:"


def test_chat_prompt_is_the_tokenizers_own_template_with_the_review_inside(smol_tokenizer):
    review = "A gripping, funny film."
    expected = smol_tokenizer.apply_chat_template(
        [{"role": "user", "content": f"{prompting.CHAT_INSTRUCTION}\n\nReview: {review}"}],
        tokenize=False, add_generation_prompt=True)
    assert prompting.chat_prompt(smol_tokenizer).render(review) == expected
    assert expected.endswith("<|im_start|>assistant\n")


def test_prefix_and_query_tokenized_apart_give_the_whole_prompts_tokens(smol_tokenizer):
    train = load_dataset("sentiment")["train"]
    demonstrations = [(train[i]["text"], prompting.SENTIMENT_WORDS[train[i]["label"]]) for i in range(4)]
    encode = lambda s: smol_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    for prompt in (prompting.few_shot_prompt(demonstrations), prompting.few_shot_prompt([]),
                   prompting.chat_prompt(smol_tokenizer)):
        for text in train["text"][10:60]:
            assert encode(prompt.prefix) + encode(prompt.query(text)) == encode(prompt.render(text))


def test_label_token_ids_are_single_token_spellings_of_the_word(smol_tokenizer):
    spellings = prompting.label_token_ids(smol_tokenizer, prompting.SENTIMENT_WORDS)
    for word, ids in zip(prompting.SENTIMENT_WORDS, spellings):
        assert ids and {smol_tokenizer.decode([i]).strip().lower() for i in ids} == {word}
    assert smol_tokenizer.encode(" positive", add_special_tokens=False)[0] in spellings[1]
    with pytest.raises(ValueError, match="single token"):
        prompting.label_token_ids(smol_tokenizer, ["unquestionablyxyzzy"])


def test_demonstration_draws_are_distinct_and_deterministic():
    draw = prompting.draw_demonstrations(100, 8, seed=3)
    assert len(set(draw)) == 8 and all(0 <= i < 100 for i in draw)
    assert draw == prompting.draw_demonstrations(100, 8, seed=3)
    assert draw != prompting.draw_demonstrations(100, 8, seed=4)


def test_bootstrap_interval_matches_the_normal_approximation_of_a_proportion():
    values = (torch.rand(2000, generator=torch.Generator().manual_seed(0)) < 0.7).double()
    low, high = prompting.bootstrap_interval(values, n_resamples=4000)
    p = values.mean().item()
    half = 1.96 * (p * (1 - p) / len(values)) ** 0.5
    assert abs((high - low) / 2 - half) < 0.15 * half and low < p < high
    assert prompting.bootstrap_interval(torch.ones(50)) == (1.0, 1.0)


def test_saved_results_are_consistent_with_their_own_runs_and_the_data(results):
    test = load_dataset("sentiment")["test"]
    labels = torch.tensor([test[i]["label"] for i in results["test_indices"]])
    assert labels.tolist() == results["test_labels"]
    majority = max(labels.float().mean().item(), 1 - labels.float().mean().item())
    assert results["majority"]["accuracy"] == pytest.approx(majority)
    for run in results["runs"]:
        predicted = (torch.tensor(run["margins"]) > 0).long()
        assert run["accuracy"] == pytest.approx(predicted.eq(labels).float().mean().item())
        assert len(run["demonstrations"]) == run["shots"]
    for row in results["summary"]:
        group = [r for r in results["runs"] if (r["prompt"], r["shots"], r["order"]) == (row["prompt"], row["shots"], None)]
        assert row["mean"] == pytest.approx(sum(r["accuracy"] for r in group) / len(group))
        assert row["min"] == min(r["accuracy"] for r in group) and row["interval"][0] <= row["mean"] <= row["interval"][1]
    test_texts = set(test["text"])
    train = load_dataset("sentiment")["train"]
    assert not test_texts & {train[i]["text"] for r in results["runs"] for i in r["demonstrations"]}


def test_saved_margins_are_what_the_package_computes_on_smollm2(results, smol_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=torch.float32).eval()
    test, train = load_dataset("sentiment")["test"], load_dataset("sentiment")["train"]
    texts = [test[i]["text"] for i in results["test_indices"][:3]]
    run = next(r for r in results["runs"] if r["shots"] == 2 and r["order"] is None)
    demonstrations = [(train[i]["text"], prompting.SENTIMENT_WORDS[train[i]["label"]]) for i in run["demonstrations"]]
    log_probs = prompting.score_texts(model, smol_tokenizer, prompting.few_shot_prompt(demonstrations), texts,
                                      prompting.SENTIMENT_WORDS)
    torch.testing.assert_close(log_probs[:, 1] - log_probs[:, 0], torch.tensor(run["margins"][:3]), atol=2e-3, rtol=0)
