"""Summaries and keywords: pure functions over text and document frequencies."""

from __future__ import annotations

from app import text

ARTICLE = """The city council approved a plan to build flood defences along the river on Monday.

Engineers said the flood defences would protect ten thousand homes from rising water. The plan includes pumps,
walls and a new reservoir upstream. Critics argued that the reservoir would flood farmland in the valley.

The council will fund the flood defences with a bond. A public consultation on the reservoir begins next month.
Residents can read the engineering report at the library."""


def test_sentences_split_on_punctuation_and_paragraphs() -> None:
    assert text.split_sentences("One. Two! Three?\n\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert text.split_sentences("Dr. No was 3.5 m tall.") == ["Dr. No was 3.5 m tall."]


def test_tokens_drop_stop_words_numbers_and_short_words() -> None:
    assert text.tokenize("The 3 big floods of 2024 and the Council's plan") == ["big", "floods", "council", "plan"]


def test_keywords_prefer_terms_frequent_here_and_rare_in_the_corpus() -> None:
    df = {"council": 90, "plan": 80, "flood": 3, "defences": 2, "reservoir": 1}
    words = text.keywords(ARTICLE, df, n_docs=100)
    assert 5 <= len(words) <= 10
    assert words[:3] == ["flood", "reservoir", "defences"]
    assert "council" in words[3:] or "council" not in words
    assert not set(words) & text.STOP_WORDS


def test_keywords_of_a_tiny_text_are_fewer() -> None:
    assert text.keywords("Flood warning.", {}, 1) == ["flood", "warning"]
    assert text.keywords("", {}, 1) == []


def test_summary_is_two_or_three_representative_sentences_in_order() -> None:
    summary = text.summarize(ARTICLE, {"flood": 3, "defences": 2, "reservoir": 1}, 100)
    sentences = text.split_sentences(summary)
    assert 2 <= len(sentences) <= 3
    originals = text.split_sentences(ARTICLE)
    positions = [originals.index(s) for s in sentences]
    assert positions == sorted(positions), "original order"
    assert all("flood" in s or "reservoir" in s for s in sentences)


def test_summary_of_a_short_text_is_the_text() -> None:
    assert text.summarize("Only one sentence here.", {}, 1) == "Only one sentence here."


def test_results_are_deterministic() -> None:
    df = {"flood": 3}
    assert text.summarize(ARTICLE, df, 10) == text.summarize(ARTICLE, df, 10)
    assert text.keywords(ARTICLE, df, 10) == text.keywords(ARTICLE, df, 10)


def test_a_repeated_sentence_is_summarised_once() -> None:
    repeated = "The vote on the flood defences is next month. " * 3
    body = repeated + "Engineers said the flood defences protect homes. Critics disagree about the cost of the walls."
    summary = text.summarize(body, {"flood": 1}, 10)
    assert summary.count("The vote on the flood defences is next month.") <= 1
