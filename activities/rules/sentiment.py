"""How angry a complaint reads, and which language it is written in, for the rules.

- Language: by script. Han characters make it Chinese (`zh`); Latin letters
  make it English (`en`), the only other language our templates and lexicons
  cover. A text with neither says nothing (None), and the customer's declared
  language stands.
- Score in [-1, 1] (negative = hostile): English from vaderSentiment's
  compound score; Chinese from pysenti's rule-based score, which is unbounded,
  squashed the way VADER squashes its own sum (x / sqrt(x^2 + alpha)) with an
  alpha chosen so that both lexicons put a furious complaint near -0.7 and a
  neutral report of a problem above -0.3 (see tests/test_sentiment.py).
- Anger = max(0, -score): what rules test (`sentiment.anger >= 0.6`).

Both lexicons ship inside their packages (no download) and load once per
worker process, on the first complaint that needs them.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

# Runs, not single characters: counting the letters of each run is the same count, made from a
# word's worth of matches instead of one per letter (half the time on a long complaint).
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN = re.compile(r"[A-Za-z]+")
ZH_ALPHA = 4.0
_lock = threading.Lock()  # jieba's first load is not thread-safe; activities run in threads


@dataclass(frozen=True)
class Sentiment:
    language: str | None
    score: float
    anger: float

    def as_variables(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "anger": round(self.anger, 4)}


def detect_language(text: str) -> str | None:
    if text.isascii():  # most English texts: no Han character can be in it, and one check in C says so
        return "en" if _LATIN.search(text) else None
    han = len(text) - len(_HAN.sub("", text))  # counted in C: a long English text has no Han character to remove
    if han == 0:  # an English text with a curly quote or an accent: no need to count its thousand letters
        return "en" if _LATIN.search(text) else None
    if han * 5 >= len(text.encode("ascii", "ignore")):  # more than all its ASCII characters could outweigh
        return "zh"
    latin = sum(map(len, _LATIN.findall(text)))
    # A Han character carries about a word; a Latin word is about five letters.
    return "zh" if han * 5 >= latin else "en"


def assess(text: str) -> Sentiment:
    language = detect_language(text)
    if language == "zh":
        score = _chinese_score(text)
    elif language == "en":
        score = _english().polarity_scores(text)["compound"]
    else:
        score = 0.0
    return Sentiment(language=language, score=score, anger=max(0.0, -score))


def _chinese_score(text: str) -> float:
    with _lock:
        raw = _chinese().classify(text)["score"]
    return raw / math.sqrt(raw * raw + ZH_ALPHA)


@cache
def _english() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def _chinese() -> Any:
    import logging

    import jieba
    import pysenti

    jieba.setLogLevel(logging.WARNING)  # it prints its dictionary loading to stderr otherwise
    return pysenti
