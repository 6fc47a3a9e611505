"""Which language a text is in: English or Chinese, from the share of CJK characters.

Every room needs the same answer for the same text (the knowledge base chooses its encoder by it,
the NLU gate and sentiment by it, the bot's texts by it), so it lives here, with no model: a
customer's message is Chinese when Han characters make up at least `ZH_SHARE` of its letters.
Mixed messages ("订单NW-123 cancel 掉") are Chinese as soon as Chinese carries the sentence;
pinyin ("nihao") cannot be told from English by characters and counts as English.
"""
from __future__ import annotations

import re
from typing import Iterable, Literal

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
ZH_SHARE = 0.3  # share of letters that are Han characters from which a text is Chinese

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
LATIN = re.compile(r"[A-Za-z]")
# Full-width punctuation and CJK symbols: a hint, not letters (a lone "？？" says nothing).
CJK_PUNCT = re.compile(r"[\u3000-\u303f\uff00-\uffef]")


def han_share(text: str) -> float:
    """Han characters / (Han characters + Latin letters); 0.0 for a text with neither."""
    han = len(HAN.findall(text))
    latin = len(LATIN.findall(text))
    # A Latin word weighs like about two Han characters (one Han character is a word or half of one).
    latin_words = len(re.findall(r"[A-Za-z]+", text))
    total = han + min(latin, 2 * latin_words)
    return han / total if total else 0.0


def detect(text: str, default: Language = "en") -> Language:
    """The language of one message; `default` when it has no letters at all ("?!", "123")."""
    if not HAN.search(text) and not LATIN.search(text):
        return default
    return "zh" if han_share(text) >= ZH_SHARE else "en"


def normalise_tag(tag: str | None) -> Language | None:
    """A BCP 47 tag from a browser or host page ("zh-CN", "zh-Hans", "en-GB") -> en | zh | None."""
    if not tag:
        return None
    primary = str(tag).strip().lower().replace("_", "-").split("-")[0]
    if primary in ("zh", "cmn", "yue"):
        return "zh"
    if primary == "en":
        return "en"
    return None


def corpus_share(texts: Iterable[str], limit: int = 5000) -> float:
    """The share of texts (at most `limit`, first ones) that are Chinese: how Chinese a knowledge base is."""
    total = chinese = 0
    for text in texts:
        if total >= limit:
            break
        total += 1
        chinese += detect(text) == "zh"
    return chinese / total if total else 0.0
