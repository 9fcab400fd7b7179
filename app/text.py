"""Text analysis for articles: an extractive summary and keywords weighted against the corpus.

Pure functions (no I/O), so they are unit-tested directly and shared by the Celery task
and the seed command.

* Keywords: TF-IDF. A term's weight in an article is its frequency there times
  ``log((N + 1) / (df + 1)) + 1``, where N is the number of articles and df the number of
  articles containing the term (kept in the ``article_terms`` table). Stop words, numbers
  and very short tokens are dropped.
* Summary: the sentences closest (cosine similarity of TF-IDF vectors) to the whole
  article's vector, i.e. the most representative ones: 2 for short articles, 3 otherwise,
  returned in their original order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

MIN_KEYWORDS = 5
MAX_KEYWORDS = 10
SUMMARY_MAX_CHARS = 1000

STOP_WORDS = frozenset(
    """
    a about above after again against all almost also although always am among an and another any anyone
    anything are around as at away back be became because become becomes been before being below between
    both but by came can cannot could did do does doing done down during each either else enough even
    ever every few first for from further get gets getting give given go goes going gone got had has
    have having he her here hers herself him himself his how however i if in into is it its itself just
    keep know last least less let like likely made make makes many may me might more most mostly much
    must my myself near need never new next no nor not now of off often on once one only onto or other
    others otherwise our ours ourselves out over own part per perhaps put rather really said same say
    says see seem seemed seems several shall she should show since so some something still such take
    than that the their theirs them themselves then there therefore these they thing things this those
    though through thus to together too toward towards two under until up upon us use used uses using
    very via was way we well were what whatever when where whether which while who whole whom whose why
    will with within without would yet you your yours yourself yourselves year years time times today
    week weeks day days told according across three four five six seven eight nine ten percent mr mrs ms
    dr st
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")


ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "gen",
        "col",
        "lt",
        "sgt",
        "rep",
        "sen",
        "gov",
        "mt",
        "vs",
        "etc",
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "nos",
        "fig",
        "approx",
    ]
)


def _ends_with_abbreviation(piece: str) -> bool:
    last = piece.rsplit(None, 1)[-1].rstrip(".").lower() if piece.strip() else ""
    return last in ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (paragraph breaks always end a sentence; "Dr." or "U.S." do not)."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\r\n\s*\r\n", text):
        paragraph = " ".join(paragraph.split())
        pending = ""
        for piece in _SENTENCE_END.split(paragraph):
            pending = f"{pending} {piece}".strip() if pending else piece.strip()
            if pending and not _ends_with_abbreviation(pending):
                sentences.append(pending)
                pending = ""
        if pending:
            sentences.append(pending)
    return sentences


def tokenize(text: str) -> list[str]:
    """Lower-cased content words: no stop words, no numbers, at least 3 letters."""
    words = (w.lower().strip("'-") for w in _WORD.findall(text))
    return [w.removesuffix("'s") for w in words if len(w) >= 3 and w not in STOP_WORDS]


def terms_of(text: str) -> set[str]:
    """The distinct terms an article contributes to the corpus's document frequencies."""
    return {t for t in tokenize(text) if len(t) <= 64}


def idf(df: int, n_docs: int) -> float:
    """Smoothed inverse document frequency; never negative, 1.0 for a term in every document."""
    return math.log((n_docs + 1) / (df + 1)) + 1.0


def tfidf(tokens: Iterable[str], df: Mapping[str, int], n_docs: int) -> dict[str, float]:
    counts = Counter(tokens)
    return {term: count * idf(df.get(term, 0), n_docs) for term, count in counts.items()}


def keywords(text: str, df: Mapping[str, int], n_docs: int) -> list[str]:
    """5-10 terms that characterise ``text`` against the corpus (fewer if it has fewer terms).

    Beyond the first five, a term is kept only while its weight is at least a third of the
    best term's, so a short, focused article does not get padded with noise.
    """
    weights = tfidf((t for t in tokenize(text) if len(t) <= 64), df, n_docs)
    ranked = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
    if not ranked:
        return []
    best = ranked[0][1]
    chosen = [term for term, _ in ranked[:MIN_KEYWORDS]]
    chosen += [term for term, weight in ranked[MIN_KEYWORDS:MAX_KEYWORDS] if weight >= best / 3]
    return chosen


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(weight * b.get(term, 0.0) for term, weight in a.items())
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0


def summarize(text: str, df: Mapping[str, int], n_docs: int) -> str:
    """The 2-3 most representative sentences of ``text``, in their original order."""
    sentences = split_sentences(text)
    if len(sentences) <= 2:
        return " ".join(sentences)[:SUMMARY_MAX_CHARS]
    wanted = 2 if len(sentences) <= 6 else 3
    document = tfidf(tokenize(text), df, n_docs)
    scored = []
    for index, sentence in enumerate(sentences):
        vector = tfidf(tokenize(sentence), df, n_docs)
        # A slight preference for earlier sentences: news puts the essentials first.
        score = _cosine(vector, document) * (1.0 - 0.02 * min(index, 10))
        scored.append((score, index))
    chosen: list[tuple[float, int]] = []
    seen: set[str] = set()
    for score, index in sorted(scored, key=lambda item: (-item[0], item[1])):
        normalized = " ".join(tokenize(sentences[index]))
        if normalized in seen:
            continue  # a repeated sentence says nothing new
        seen.add(normalized)
        chosen.append((score, index))
        if len(chosen) == wanted:
            break
    top = sorted(chosen, key=lambda item: item[1])
    summary = " ".join(sentences[index] for _, index in top)
    return summary if len(summary) <= SUMMARY_MAX_CHARS else summary[: SUMMARY_MAX_CHARS - 1].rstrip() + "…"
