"""Keyword routing with one Aho-Corasick automaton per rule set: every keyword of every rule in one pass.

The automaton is ahocorasick-rs's (Rust): it walks a complaint three to four times faster than
pyahocorasick's did, and hands back every occurrence in one list; what follows (word bounds,
the longest match, negation) is ours, below.

Matching is case-insensitive and on words, so that an admin can predict it:

- **English (Latin letters and digits)**: a keyword matches whole words. "car" is not in
  "card", "sue" not in "issue", "atm" not in "treatment". It may end with an inflection
  ("refund" matches "refunds", "refunded", "refunding"; "charge" matches "charged";
  "stop" matches "stopped"); end it with `*` to match any continuation ("foreclos*"
  matches "foreclosure" and "foreclosed").
- **Chinese**: there are no spaces, so a keyword is found inside the text. A keyword of one
  character is a word only where it stands alone or ends a longer word of jieba's dictionary (the
  head of a compound keeps its meaning: "券" in "优惠券", "坏" in "摔坏"); at the start or inside
  one it is part of another word: "吵" (noisy) counts in "太吵了", not in "吵架" (a quarrel); "火"
  not in "火车" (a particle after it changes nothing: "脏得"). Longer keywords are words
  themselves; where a longer word means something else ("手续费", a fee, holds "手续", formalities),
  list it in the rule it belongs to and the longest wins (below).
- **The longest keyword wins**: where one keyword found lies inside another found ("delivered" in
  "not delivered", "态度" in "态度很差"), only the longer counts, for every rule, so a phrase
  is not counted again for each of its words.

For a rule that says `negation: true`, a keyword said in the negative does not count:
"not damaged", "wasn't damaged at all", "箱子没有破损", "没被压坏", "不破损" (only where it
matters: "I wasn't refunded" is still about a refund). An occurrence is negated when a
negation ends just before it: in English "not", "no", "never", "without" or a "-n't" word,
up to two words before it (but not "not only"); in Chinese 没/没有/不/不是/无/未/并非,
directly or with 被/有/再/太 between (but not 不但/不仅/不光, "not only"). A keyword counts
if any of its occurrences is not negated. The keyword itself may start with a negation ("not
delivered", "未收到"): only what comes before it is read.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from ahocorasick_rs import AhoCorasick

WINDOW = 24  # characters read before an occurrence: two English words and a negation fit
ENGLISH_NEGATION = re.compile(r"(?<![a-z])(?:not|no|never|without|[a-z]+n't)\s+(?:[a-z]+\s+){0,2}$")
NOT_ONLY = re.compile(r"(?<![a-z])not\s+only\s+(?:[a-z]+\s+){0,1}$")
CHINESE_NEGATION = re.compile(r"(?:没有|没|不是|不|无|未|并非)(?:被|有|再|太)?$")
CHINESE_NOT_ONLY = ("不但", "不仅", "不光")
CUES = ("not", "no", "never", "without", "n't", "没", "不", "无", "未", "非")

STEM = "*"
INFLECTIONS = frozenset({"s", "es", "ed", "ing", "'s"})
LONGEST_WORD = 4  # characters of the longest dictionary word looked for around a one-character keyword
# letters and digits of Latin script (casefolded): what a word is made of, for whole-word matching
WORD_CHARACTERS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz" + "".join(map(chr, range(0xC0, 0x250))))
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_PARTICLES = frozenset("的得地了着过吗呢吧啊呀")
_jieba_lock = threading.Lock()


def negated(before: str) -> bool:
    """Whether the text just before an occurrence (casefolded) says it in the negative."""
    if not any(cue in before for cue in CUES):  # most occurrences: no regex at all
        return False
    if ENGLISH_NEGATION.search(before) and not NOT_ONLY.search(before):
        return True
    tail = before.rstrip()
    return bool(CHINESE_NEGATION.search(tail)) and not tail.endswith(CHINESE_NOT_ONLY)


def is_word_character(character: str) -> bool:
    return character in WORD_CHARACTERS


def inflected(keyword: str, following: str) -> bool:
    """Whether the word characters right after a keyword make an inflection of it ("refund" + "ed")."""
    if following in INFLECTIONS:
        return True
    if following == "d" and keyword.endswith("e"):  # charge -> charged
        return True
    # a doubled last consonant: stop -> stopped, ship -> shipping
    return len(following) > 1 and following[0] == keyword[-1] and following[1:] in ("ed", "ing")


@cache
def chinese_words() -> Mapping[str, int]:
    """jieba's dictionary: word -> frequency (0 for a prefix that is no word). Loaded once, when a rule set
    has a one-character Chinese keyword; the sentiment rules load it anyway, so this costs no memory more."""
    import jieba

    with _jieba_lock:
        jieba.setLogLevel(60)
        jieba.dt.check_initialized()
        return jieba.dt.FREQ


def inside_longer_word(text: str, at: int, words: Mapping[str, int]) -> bool:
    """Whether the character text[at] starts or sits inside a longer dictionary word (吵 in 吵架) and ends none.

    A word it ends (焦糊 for 糊 in 焦糊味) wins over one it starts (糊味): the head of a compound
    is what the compound is about.
    """
    if any(words.get(text[left : at + 1]) for left in range(max(0, at - LONGEST_WORD + 1), at)):
        return False
    for left in range(max(0, at - LONGEST_WORD + 2), at + 1):
        for right in range(at + 2, min(len(text), left + LONGEST_WORD) + 1):
            if words.get(text[left:right]) and not set(text[at + 1 : right]) <= _PARTICLES:
                return True
    return False


@dataclass(frozen=True, slots=True)
class _Keyword:
    listed: str  # as the admin listed it, casefolded ("foreclos*"): what rules and explain report
    rules: tuple[int, ...]
    whole_start: bool  # starts with a letter or digit: must start a word
    whole_end: bool  # ends with one and is not a stem: must end a word, or with an inflection
    chinese: bool  # one Han character: must not start or sit inside a longer word
    rules_when_negated: tuple[int, ...]  # the rules it still counts for when said in the negative


class KeywordIndex:
    def __init__(self, keywords_per_rule: list[list[str]], respects_negation: set[int] | None = None):
        self._respects_negation = frozenset(respects_negation or ())
        owners: dict[str, set[int]] = {}
        for rule_index, listed_by_rule in enumerate(keywords_per_rule):
            for word in listed_by_rule:
                owners.setdefault(fold(word), set()).add(rule_index)
        # one automaton entry per text; "refund" (one rule) and "refund*" (another) are two variants of it,
        # each matched by its own bounds and counted for its own rules only
        variants: dict[str, list[_Keyword]] = {}
        for listed, rules in owners.items():
            stem = listed.endswith(STEM) and len(listed) > 1
            text = listed[:-1] if stem else listed
            variants.setdefault(text, []).append(
                _Keyword(
                    listed=listed,
                    rules=tuple(sorted(rules)),
                    whole_start=is_word_character(text[0]),
                    whole_end=is_word_character(text[-1]) and not stem,
                    chinese=len(text) == 1 and bool(_HAN.match(text)),
                    rules_when_negated=tuple(sorted(rules - self._respects_negation)),
                )
            )
        self._chinese = any(k.chinese for found in variants.values() for k in found)
        texts = list(variants)
        self._variants = [tuple(variants[text]) for text in texts]  # by the automaton's pattern index
        self._automaton = AhoCorasick(texts) if texts else None

    def matches(self, text: str) -> dict[int, list[str]]:
        """Rule index -> the keywords of that rule found in the text, in order of first appearance."""
        found: dict[int, list[str]] = {}
        if self._automaton is None:
            return found
        folded = fold(text)
        spans = self._spans(self._automaton, folded)
        if not spans:
            return found
        # the longest wins: a span inside one already kept (sorted by start, longest first) does not count
        spans.sort()
        reach, kept_start = -1, -1
        respects_negation = self._respects_negation
        affirmed: dict[str, tuple[_Keyword, bool]] = {}  # each keyword once, in order of first appearance
        for start, minus_end, _, keyword in spans:
            end = -minus_end
            if end < reach or (end == reach and start != kept_start):
                continue  # inside a longer one (the same span twice is two variants of one word: both count)
            reach, kept_start = end, start
            listed = keyword.listed
            if listed in affirmed and affirmed[listed][1]:
                continue
            said = not respects_negation or not negated(folded[max(0, start - WINDOW) : start])
            affirmed[listed] = (keyword, said)
        for listed, (keyword, said) in affirmed.items():
            for rule_index in keyword.rules if said else keyword.rules_when_negated:
                listing = found.get(rule_index)
                if listing is None:
                    found[rule_index] = [listed]
                else:
                    listing.append(listed)
        return found

    def _spans(self, automaton: AhoCorasick, folded: str) -> list[tuple[int, int, int, _Keyword]]:
        """Each occurrence of a keyword that stands as a word (or a stem, or a Chinese word): start, -end, and
        the order found (so that sorting never compares keywords)."""
        words = chinese_words() if self._chinese else {}
        length = len(folded)
        spans: list[tuple[int, int, int, _Keyword]] = []
        word = WORD_CHARACTERS
        entries = self._variants
        try:
            occurrences = automaton.find_matches_as_indexes(folded, overlapping=True)
        except UnicodeEncodeError:  # a lone surrogate (intake refuses them): matched as "?", positions kept
            occurrences = automaton.find_matches_as_indexes(
                folded.encode("utf-8", "replace").decode(), overlapping=True
            )
        for index, start, matched_end in occurrences:
            for keyword in entries[index]:
                end = matched_end
                if keyword.whole_start and start and folded[start - 1] in word:
                    continue
                if keyword.whole_end and end < length and folded[end] in word:
                    stop = end
                    while stop < length and folded[stop] in word:
                        stop += 1
                    if not inflected(folded[start:end], folded[end:stop]):
                        continue
                    end = stop
                if keyword.chinese and inside_longer_word(folded, start, words):
                    continue
                spans.append((start, -end, len(spans), keyword))
        return spans


# what people type that means what the keywords say: typographic apostrophes (a phone types U+2019
# in didn't) as typed ones; characters that show nothing (zero-width spaces, soft hyphens, BOMs) gone
_APOSTROPHES = "\u2018\u2019\u02bc\uff07"
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
_SAME_AS_TYPED = str.maketrans(dict.fromkeys(_APOSTROPHES, "'") | dict.fromkeys(_INVISIBLE))
_TYPOGRAPHIC = frozenset(_APOSTROPHES + _INVISIBLE)
# full-width forms (U+FF01-FF5E, and the ideographic space): Chinese text is full of them (，！？：（）), and NFKC
# maps each to its ASCII twin; mapping those first leaves most Chinese texts normal without normalising them
_FULL_WIDTH = frozenset(["\u3000", *map(chr, range(0xFF01, 0xFF5F))])
_NARROWED_AT_MOST = 8  # distinct full-width forms narrowed one by one; more (full-width English) go to NFKC
_MARKS = re.compile("[" + re.escape("".join(sorted(_FULL_WIDTH | _TYPOGRAPHIC))) + "]")


def _narrow(text: str, marks: set[str]) -> str:
    """Each full-width form as NFKC decomposes it: a few distinct ones (，and ！) stand many times in a text."""
    for character in marks & _FULL_WIDTH:
        text = text.replace(character, " " if character == "\u3000" else chr(ord(character) - 0xFEE0))
    return text


def fold(text: str) -> str:
    """Text and keywords as they are compared: NFKC (full-width letters, ligatures, composed accents),
    casefolded, with typographic apostrophes as typed ones and invisible characters gone.

    Each step runs only where it changes something: a triage folds every complaint, and NFKC
    over a Chinese text costs more than matching it. Replacing a full-width form by what NFKC
    decomposes it to leaves NFKC's result unchanged, so the text is normalised only if it is
    still not normal after that. One scan finds the full-width forms and the typographic marks.
    """
    if text.isascii():  # most English texts: NFKC changes nothing, nothing typographic or invisible in them
        return text.lower()
    marks = set(_MARKS.findall(text))
    if not unicodedata.is_normalized("NFKC", text):  # a check in C, cheaper than normalising what is normal
        if len(marks) <= _NARROWED_AT_MOST:  # one pass over the text per distinct form: only for a few
            text = _narrow(text, marks)
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
            marks = set(_MARKS.findall(text))  # NFKC makes some: "\u0149" is "\u02bcn"
    text = text.casefold()
    if not marks.isdisjoint(_TYPOGRAPHIC):
        text = text.translate(_SAME_AS_TYPED)
    return text
