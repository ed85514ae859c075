"""The behaviours chapter 13 teaches SmolLM2-135M-Instruct, built and scored offline from rules a learner can read.

**SFT: a film review in, a fixed JSON object out.** The user message is ``Movie: <title>\\nReview: <snippet>`` (the
sentiment set, :func:`tfs.data.load_dataset`; the title is the row's ``movie`` slug, title-cased); the system
message is only :data:`REVIEW_SYSTEM` (``"Reply in JSON."``); the reply the course trains is exactly
``{"movie": "<title>", "sentiment": "positive" | "negative"}`` (fresh -> positive, rotten -> negative).
:func:`score_review` checks a reply: parses as JSON, has exactly that schema, copies the title, gets the label.
:data:`SCHEMA_SYSTEM` spells the schema out: the prompt-engineering baseline.

**General answers: did anything else break?** :data:`GENERAL_QUESTIONS`, short factual questions with the words a
right answer contains (:func:`score_general`), asked with SmolLM2's default system message.

**DPO: brief answers.** Questions from :data:`TEMPLATES` x :data:`TOPICS` (:func:`brevity_prompts`; held-out topics
never trained on). From the base model's own greedy answer, :func:`preference_pair` builds the pair by one rule:
**chosen = the answer's first sentence, rejected = the whole answer** (at least two full sentences, a first
sentence of at least five words; a trailing cut-off sentence is dropped).
"""

from __future__ import annotations

import json
import random
import re
from typing import Sequence

__all__ = ["GENERAL_QUESTIONS", "MIN_FIRST_WORDS", "REVIEW_SYSTEM", "SCHEMA_SYSTEM", "SENTIMENTS", "TEMPLATES",
           "TOPICS", "brevity_prompts", "general_messages", "movie_title", "preference_pair", "review_chats",
           "review_messages", "review_reply", "score_general", "score_review", "sentence_ends"]

REVIEW_SYSTEM = "Reply in JSON."
SCHEMA_SYSTEM = ('Classify the review. Reply with JSON only, in this form: '
                 '{"movie": "<title>", "sentiment": "positive" or "negative"}')
SENTIMENTS = ("negative", "positive")  # label 0 (rotten), 1 (fresh)
MIN_FIRST_WORDS = 5


# ------------------------------------------------------------------------------------------ reviews -> JSON

def movie_title(slug: str) -> str:
    """``"a_grin_without_a_cat"`` -> ``"A Grin Without A Cat"``."""
    return " ".join(word.capitalize() for word in slug.split("_") if word)


def review_messages(row: dict, system: str = REVIEW_SYSTEM) -> list[dict]:
    """The system and user messages for a sentiment row (``text``, ``movie``)."""
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"Movie: {movie_title(row['movie'])}\nReview: {row['text']}"}]


def review_reply(row: dict) -> str:
    """The reply SFT teaches: ``{"movie": "<title>", "sentiment": "positive" | "negative"}``."""
    return json.dumps({"movie": movie_title(row["movie"]), "sentiment": SENTIMENTS[row["label"]]}, ensure_ascii=False)


def review_chats(split: str, n: int | None = None, seed: int = 0, system: str = REVIEW_SYSTEM) -> list[dict]:
    """``n`` rows of the sentiment set's ``split`` (all when ``None``) in a seeded order, each
    ``{"messages": [system, user, assistant], "row": the row}``."""
    from tfs.data import load_dataset

    rows = list(load_dataset("sentiment")[split])
    random.Random(seed).shuffle(rows)
    rows = rows if n is None else rows[:n]
    return [{"messages": review_messages(row, system) + [{"role": "assistant", "content": review_reply(row)}],
             "row": row} for row in rows]


def score_review(reply: str, row: dict) -> dict[str, bool]:
    """``json``: the reply parses as a JSON object; ``schema``: exactly the keys ``movie`` and ``sentiment``, the
    sentiment one of :data:`SENTIMENTS`; ``movie``: the title copied exactly; ``sentiment``: the right label."""
    try:
        value = json.loads(reply)
    except ValueError:
        value = None
    is_object = isinstance(value, dict)
    schema = is_object and set(value) == {"movie", "sentiment"} and value["sentiment"] in SENTIMENTS
    return {"json": is_object, "schema": bool(schema),
            "movie": bool(schema and value["movie"] == movie_title(row["movie"])),
            "sentiment": bool(schema and value["sentiment"] == SENTIMENTS[row["label"]])}


# ------------------------------------------------------------------------------------------ general questions

GENERAL_QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is the capital of Italy?", ("rome",)),
    ("What is the capital of Germany?", ("berlin",)),
    ("What is the capital of Spain?", ("madrid",)),
    ("What is the capital of Egypt?", ("cairo",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("How many legs does a spider have?", ("eight", "8")),
    ("How many hours are there in a day?", ("24", "twenty-four")),
    ("How many continents are there on Earth?", ("seven", "7")),
    ("What is the largest planet in the solar system?", ("jupiter",)),
    ("Which planet is known as the Red Planet?", ("mars",)),
    ("Which ocean is the largest?", ("pacific",)),
    ("What is the tallest mountain in the world?", ("everest",)),
    ("Who wrote Romeo and Juliet?", ("shakespeare",)),
    ("Who painted the Mona Lisa?", ("leonardo", "vinci")),
    ("What gas do plants take in from the air to make food?", ("carbon dioxide", "co2")),
    ("At what temperature in Celsius does water boil at sea level?", ("100",)),
    ("What is the chemical symbol for gold?", ("au",)),
    ("What language is mainly spoken in Brazil?", ("portuguese",)),
    ("What do bees make from nectar?", ("honey",)),
    ("What is the freezing point of water in Celsius?", ("0", "zero")),
    ("What is the largest mammal on Earth?", ("blue whale",)),
    ("Which organ pumps blood around the human body?", ("heart",)),
]


def general_messages(question: str) -> list[dict]:
    """A general question as a chat with SmolLM2's default system message (the template adds it)."""
    return [{"role": "user", "content": question}]


def score_general(reply: str, keywords: Sequence[str]) -> bool:
    """True when ``reply`` contains one of ``keywords`` as whole words (case-insensitive)."""
    text = reply.lower()
    return any(re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text) for word in keywords)


# ------------------------------------------------------------------------------------------ brief answers (DPO)

TEMPLATES = ("What is {}?", "Tell me about {}.", "Why is {} important?", "How does {} work?")
TOPICS = (
    "a volcano", "the moon", "bread", "a rainbow", "photosynthesis", "the piano", "a glacier", "electricity",
    "the heart", "a compass", "coffee", "the internet", "a bicycle", "gravity", "a library", "honey", "the ocean",
    "a telescope", "sleep", "a desert", "the sun", "recycling", "a lighthouse", "chess", "a forest", "rain",
    "a microscope", "democracy", "a battery", "wind", "the brain", "a calendar", "music", "a bridge", "cheese",
    "an earthquake", "the alphabet", "a camera", "vaccination", "a river", "money", "a clock", "snow",
    "a rocket", "the printing press", "a thermometer", "friendship", "a map", "exercise", "a harbour",
    "a submarine", "the weather", "a garden", "a refrigerator", "the stock market", "a violin", "tea", "a cloud",
    "the immune system", "a windmill", "soap", "a train", "the skeleton", "a mirror", "salt", "an airplane",
    "a museum", "a dictionary", "the tides", "a hurricane", "an elephant", "a spider web", "the seasons", "glass",
    "a magnet", "a solar panel", "language", "a bee", "the post office", "a passport", "paper", "a coral reef",
    "a thunderstorm", "the Olympic Games", "a beehive", "a computer", "a hospital", "a candle", "the eye",
    "an orchestra", "a satellite", "the periodic table", "a wheel", "a fire extinguisher", "a newspaper",
    "a mountain", "blood", "a dam", "breakfast", "a kite", "the telephone", "a lake", "chocolate", "a farm",
    "the lungs", "an umbrella", "a school", "a penguin", "a leap year", "a guitar", "the stars", "a tree",
    "a pyramid", "a bank", "the rain forest", "a robot", "a city", "the human skin", "a storm", "a ladder",
    "a canal", "a wind turbine", "a poem", "a shark", "a bakery", "the sky", "an island", "a flag",
)


def brevity_prompts(split: str) -> list[str]:
    """The DPO questions of ``split``: ``"train"`` (four of every five topics) or ``"test"`` (the fifth: topics
    never trained on), each topic under every template."""
    if split not in ("train", "test"):
        raise ValueError(f"split is 'train' or 'test'; received {split!r}")
    topics = [t for i, t in enumerate(TOPICS) if (i % 5 == 4) == (split == "test")]
    return [template.format(topic) for topic in topics for template in TEMPLATES]


def sentence_ends(text: str) -> list[int]:
    """Where each complete sentence of ``text`` ends (an index into ``text``): after ``.``, ``!`` or ``?`` (and a
    closing quote or bracket) followed by white space and a capital letter, a digit or a quote, or by the end."""
    return [m.end() for m in re.finditer(r"[.!?][\"')]?(?=\s+[A-Z0-9\"']|\s*$)", text)]


def preference_pair(prompt: str, answer: str) -> dict | None:
    """The DPO pair of an answer, by the chapter's rule, or ``None`` when the rule does not apply:
    ``{"prompt", "chosen": the first sentence, "rejected": the answer up to its last complete sentence}``, when the
    answer has at least two complete sentences and its first has at least :data:`MIN_FIRST_WORDS` words."""
    answer = answer.strip()
    ends = sentence_ends(answer)
    if len(ends) < 2 or len(answer[:ends[0]].split()) < MIN_FIRST_WORDS:
        return None
    return {"prompt": prompt, "chosen": answer[:ends[0]], "rejected": answer[:ends[-1]]}
