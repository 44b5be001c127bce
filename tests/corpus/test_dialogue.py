import re
from dataclasses import replace

import numpy as np
import pytest

from urgence.corpus import dialogue
from urgence.corpus.build import (
    BuildConfig,
    BuildError,
    build_corpus,
    keyword_text,
    neutral_text,
    plan_shards,
)
from urgence.corpus.unknown_words import is_keyword_derivative
from urgence.corpus.vocabulary import KEYWORDS, LABELS, UNKNOWN
from urgence.triage import calls

# words of the keywords' families, beyond what ``is_keyword_derivative`` knows ("violent")
FAMILY = re.compile(
    r"^(malais|hémorrag|brûl|intox|violen|agress|vol(e|é|er|eur|eurs|s)?$|cambriol|incend|gaz"
    r"|effondr|électrocut)"
)


def _family(token: str) -> bool:
    return is_keyword_derivative(token) or bool(FAMILY.match(token))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[\w-]+", text.lower())


def test_keyword_sentences_hold_their_keyword_once_as_a_word_and_no_other():
    rng = np.random.default_rng(0)
    for keyword in KEYWORDS:
        for _ in range(40):
            tokens = _tokens(dialogue.call_sentence(rng, keyword))
            assert tokens.count(keyword) == 1
            others = [t for t in tokens if t != keyword and _family(t)]
            assert not others, others


def test_neutral_sentences_hold_no_keyword_nor_a_word_of_a_keywords_family():
    rng = np.random.default_rng(1)
    sentences = [dialogue.call_sentence(rng) for _ in range(2000)]
    assert len(set(sentences)) > 1500  # a grammar, not a list
    for sentence in sentences:
        assert not [t for t in _tokens(sentence) if _family(t)], sentence


def test_the_grammar_is_disjoint_from_the_evaluation_calls():
    def folded(text: str) -> str:
        return " ".join(_tokens(text))

    evaluation = {folded(s) for s in (*calls.CONTEXT_SENTENCES, *calls.NO_KEYWORD_SENTENCES)}
    frames = {folded(re.sub(r"\{\w+\}", " ", t)) for t in calls.KEYWORD_SENTENCES}
    ours = {folded(re.sub(r"\{\w+\}", " ", t)) for t in dialogue.KEYWORD_TEMPLATES}
    assert not frames & ours
    rng = np.random.default_rng(2)
    for _ in range(2000):
        keyword = list(KEYWORDS)[int(rng.integers(len(KEYWORDS)))] if rng.random() < 0.5 else None
        clauses = re.split(r"[.,] ", dialogue.call_sentence(rng, keyword).rstrip("."))
        assert not {folded(c) for c in clauses} & evaluation


def test_shares_choose_between_the_grammar_and_the_older_sentences():
    vocabulary = ["blorg", "zwip"]  # not French: a sentence tells where it came from
    config = BuildConfig.small(shared=None, call_sentences=0.5)
    rng = np.random.default_rng(3)
    texts = [neutral_text(vocabulary, rng, {}, config) for _ in range(400)]
    random_words = [t for t in texts if "blorg" in t or "zwip" in t]
    assert abs(len(random_words) / len(texts) - 0.5) < 0.08
    texts = [keyword_text("vol", vocabulary, rng, 1.0) for _ in range(50)]
    assert not any("blorg" in t or "zwip" in t for t in texts)
    assert all(_tokens(t).count("vol") == 1 for t in texts)
    # a share of 0 draws what the corpus drew before the grammar existed
    first = [keyword_text("gaz", vocabulary, np.random.default_rng(4)) for _ in range(5)]
    second = [keyword_text("gaz", vocabulary, np.random.default_rng(4), 0.0) for _ in range(5)]
    assert first == second


def test_a_corpus_with_call_sentences_speaks_them(tmp_path):
    config = BuildConfig.small(shared=None, voices=1, random_voices=0, pico_voices=0)
    build_corpus(tmp_path / "c", replace(config, call_sentences=1.0), verbose=False)
    clips = np.load(next((tmp_path / "c" / "clips").glob("espeak-*.npz")))
    running = clips["source"] == "espeak-running"
    assert running.any() and (clips["label"][running] == LABELS.index(UNKNOWN)).all()
    # the grammar writes sentences (a capital, a full stop); running speech is bare words
    for text in clips["text"][running]:
        assert str(text)[0].isupper() and str(text).endswith("."), text
    with pytest.raises(BuildError, match="call-sentences"):
        plan_shards(BuildConfig.small(shared=None, call_sentences=1.5))
