"""The one decision: answer, ask "did you mean A or B?", count a miss, or bring in a person.

Every action hands its signals here and does what comes back, so there is a single place where
the signals meet and a single set of thresholds (calibrated by `./tandem calibrate`, stored in
tandem.yml). Each decision carries its reasons with the values that triggered them, e.g.
"sentiment -0.72 over 2 turns <= -0.50; best FAQ score 0.41 < 0.55", which reach the agent
console (case detail/signals) and the event log.

Pure Python on plain dicts (Rasa tracker events, parse data): no rasa_sdk import, so the
benchmarks run exactly this code on labelled conversations.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from core.settings import Settings
from knowledge import decision as retrieval
from nlu.cues import refers_to_nothing_said

# Routes: which action asked (from the NLU intent, see data/rules.yml). Rasa's NLU keeps only the
# conversation; every other message is the knowledge route (nlu_fallback -> FALLBACK), decided
# against the live knowledge base. There is no complaint or out-of-scope intent: a calm problem is
# a knowledge question, anger comes from the customer's words and the conversation (mood_reasons),
# and "not covered" is the knowledge base's own verdict.
FAQ, FALLBACK, OUT_OF_SCOPE, REQUEST_HUMAN = "faq", "fallback", "out_of_scope", "request_human"
ROUTE_OF_INTENT = {"faq": FAQ, "nlu_fallback": FALLBACK, "request_human": REQUEST_HUMAN}
# Primary reason when several apply: the customer's own words first, then risk, then mood.
PRIORITY = ("customer_request", "sensitive_topic", "negative_sentiment", "frustration", "priority_customer")

SENSITIVE = {
    "legal": r"lawyers?|solicitors?|attorneys?|sue|suing|lawsuit|legal action|court|small claims|trading standards|ombudsman",
    "fraud": r"fraud\w*|scam(med)?|stolen (card|identity)|identity theft|unauthori[sz]ed (charge|payment|transaction|purchase)s?|"
             r"hacked|someone (else )?(used|accessed|logged into) my",
    "safety": r"caught fire|on fire|fire hazard|smok(e|ed|ing)|burn(ed|t|s)? (me|my|him|her|the house)|injur\w*|"
              r"electric(al)? shock|shocked me|sparks?|explod\w*|exploded|overheat\w*|chok(e|ed|ing)|unsafe|dangerous|hospital",
    # Leaving is sensitive only when the customer is also unhappy (churn); a calm "how do I delete my
    # account" is an FAQ.
    "cancellation": r"cancel (my )?(membership|account|subscription|contract)|close my account|delete my account|"
                    r"(leave|leaving|quit|quitting) (you|your (company|service|shop|store|business))|(done|finished) with (you|your \w+)|"
                    r"never (order|shop|buy|use)\w* (here|from you|you|your \w+)? ?again",
}
SENSITIVE_RE = {kind: re.compile(rf"\b({pattern})\b", re.IGNORECASE) for kind, pattern in SENSITIVE.items()}
# The same topics in Chinese (no word boundaries in Chinese text; issue 16).
SENSITIVE_ZH = {
    "legal": r"律师|起诉|法院|打官司|诉讼|报警|消协|消费者协会|12315|市场监管局|工商局",
    "fraud": r"诈骗|盗刷|被盗|被黑|账号被人|被人(登录|登陆|用了|买了|改了)|未经(我的?)?(同意|授权)|不是我(买|付|扣|下单)的",
    "safety": r"着火|起火|冒烟|烧(伤|焦|坏了?我)|爆炸|炸了|触电|漏电|受伤|窒息|噎住|去了?医院|过热|烫伤|有安全隐患|很危险",
    "cancellation": r"注销(我的)?(账号|账户|会员)|再也不(买|来|用)了|以后(再)?不(买|来|用)了",
}
SENSITIVE_ZH_RE = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in SENSITIVE_ZH.items()}
WORDS = re.compile(r"[a-z0-9']+")
HAN = re.compile(r"[\u4e00-\u9fff]+")


DEFAULTS = Settings()  # the one set of default numbers lives in core/settings.py


@dataclass(frozen=True)
class Thresholds:
    """The numbers the decision depends on (meanings and defaults: core/settings.Settings)."""

    faq_threshold: float = DEFAULTS.faq_threshold
    clarify_margin: float = DEFAULTS.clarify_margin
    clarify_floor: float = DEFAULTS.clarify_floor
    sentiment_threshold: float = DEFAULTS.sentiment_threshold
    sentiment_turns: int = DEFAULTS.sentiment_turns
    strong_negative: float = DEFAULTS.strong_negative
    frustration_threshold: float = DEFAULTS.frustration_threshold
    max_misses: int = DEFAULTS.max_misses
    priority_tiers: tuple[str, ...] = tuple(name for name, tier in DEFAULTS.tiers.items() if tier.escalate_sooner)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Thresholds":
        """The policy's numbers as the settings have them (Settings holds the one set of defaults)."""
        values = {name: getattr(settings, name) for name in cls.__dataclass_fields__ if name != "priority_tiers"}
        tiers = tuple(name.lower() for name, tier in settings.tiers.items() if tier.escalate_sooner)
        return cls(**values, priority_tiers=tiers)

    def retrieval(self) -> retrieval.Thresholds:
        """The answer/clarify/miss part, decided by knowledge/decision.py like the editor's preview."""
        return retrieval.Thresholds(self.faq_threshold, self.clarify_margin, self.clarify_floor)

    def with_retrieval(self, th: retrieval.Thresholds) -> "Thresholds":
        """These thresholds with the retrieval ones replaced (e.g. by the knowledge base's calibration)."""
        import dataclasses

        return dataclasses.replace(self, faq_threshold=th.faq_threshold, clarify_margin=th.clarify_margin,
                                   clarify_floor=th.clarify_floor)


@dataclass(frozen=True)
class Candidate:
    faq_id: str
    score: float
    question: str = ""
    rank_score: float | None = None  # knowledge.base.Match.rank_score

    @property
    def rank(self) -> float:
        return self.score if self.rank_score is None else self.rank_score


@dataclass(frozen=True)
class Turn:
    """One earlier customer message and what the bot did with it."""

    text: str
    intent: str | None = None
    sentiment: float | None = None  # None: not scored (a button payload, a non-English message)
    cues: tuple[str, ...] = ()
    outcome: str | None = None  # answer | clarify | miss | escalate | None (a plain utterance)
    faq_id: str | None = None


@dataclass(frozen=True)
class Signals:
    route: str
    text: str
    intent: str | None = None
    confidence: float = 0.0
    intent_gap: float = 1.0  # top intent confidence minus the second's
    sentiment: float | None = None
    cues: tuple[str, ...] = ()
    matches: tuple[Candidate, ...] = ()
    history: tuple[Turn, ...] = ()
    misses: int = 0  # unanswered turns in a row before this one
    tier: str | None = None
    chosen_faq: str | None = None  # the customer picked an option of a "Did you mean" question


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: str  # answer | clarify | miss | escalate
    reasons: tuple[Reason, ...] = ()
    faq_id: str | None = None
    options: tuple[Candidate, ...] = ()
    miss_kind: str | None = None
    frustration: float = 0.0

    def misses_after(self, misses: int) -> int:
        """The unanswered-turns counter after this decision (a clarify question leaves it as it was)."""
        return misses + 1 if self.action == "miss" else misses if self.action == "clarify" else 0

    @property
    def reason(self) -> str:
        return self.reasons[0].code if self.reasons else self.action

    @property
    def detail(self) -> str:
        return "; ".join(r.detail for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.action, "reason": self.reason, "detail": self.detail,
            "reasons": [asdict(r) for r in self.reasons], "frustration": round(self.frustration, 2),
        }


# -- signals from Rasa's tracker ----------------------------------------------------------------
def turns_from_events(events: Iterable[dict[str, Any]]) -> list[Turn]:
    """Customer turns of the current stretch of bot conversation, oldest first, with outcomes.

    A stretch restarts at a new session and when an agent hands the customer back, so a calm
    customer is not escalated again for what they said before a person helped them.
    """
    turns: list[Turn] = []
    for event in events:
        kind = event.get("event")
        if kind in ("session_started", "resume"):
            turns = []
        elif kind == "user":
            parse = event.get("parse_data") or {}
            sentiment = parse.get("sentiment") or {}
            scored = bool(sentiment) and sentiment.get("supported", sentiment.get("english", True))
            turns.append(Turn(
                text=event.get("text") or "",
                intent=(parse.get("intent") or {}).get("name"),
                sentiment=float(sentiment["score"]) if scored and "score" in sentiment else None,
                cues=tuple(sentiment.get("cues") or ()),
            ))
        elif kind == "bot" and turns:
            custom = ((event.get("data") or {}).get("custom") or {}).get("tandem") or {}
            last = turns[-1]
            if "answer" in custom:
                turns[-1] = Turn(last.text, last.intent, last.sentiment, last.cues, "answer", custom["answer"].get("faq_id"))
            elif "escalate" in custom:
                turns[-1] = Turn(last.text, last.intent, last.sentiment, last.cues, "escalate")
            elif "clarify" in custom:
                turns[-1] = Turn(last.text, last.intent, last.sentiment, last.cues, "clarify")
            elif "miss" in custom:
                turns[-1] = Turn(last.text, last.intent, last.sentiment, last.cues, "miss")
    return turns


def nlu_values(parse: dict[str, Any]) -> tuple[str | None, float, float]:
    """Top intent, its confidence, and its gap to the runner-up."""
    ranking = parse.get("intent_ranking") or []
    intent = parse.get("intent") or {}
    confidence = float(intent.get("confidence") or 0.0)
    second = float(ranking[1].get("confidence") or 0.0) if len(ranking) > 1 else 0.0
    return intent.get("name"), confidence, confidence - second


def signals_from_tracker(
    route: str, parse: dict[str, Any], events: Sequence[dict[str, Any]], matches: Sequence[Candidate],
    misses: int, tier: str | None = None,
) -> Signals:
    """Everything the decision needs from the current message, the conversation and the FAQ search."""
    turns = turns_from_events(events)
    history = tuple(turns[:-1]) if turns else ()
    intent, confidence, gap = nlu_values(parse)
    sentiment = parse.get("sentiment") or {}
    scored = bool(sentiment) and sentiment.get("supported", sentiment.get("english", True)) and "score" in sentiment
    chosen = next((e.get("value") for e in parse.get("entities") or [] if e.get("entity") == "faq_id"), None)
    tier = tier or ((parse.get("metadata") or {}).get("tier"))
    return Signals(
        route=route, text=parse.get("text") or "", intent=intent, confidence=confidence, intent_gap=gap,
        sentiment=float(sentiment["score"]) if scored else None, cues=tuple(sentiment.get("cues") or ()),
        matches=tuple(matches), history=history, misses=misses, tier=str(tier).lower() if tier else None,
        chosen_faq=str(chosen) if chosen else None,
    )


# -- the parts of the decision ---------------------------------------------------------------------
def sensitive_topic(text: str) -> tuple[str, str] | None:
    for kind, pattern in SENSITIVE_RE.items():
        found = pattern.search(text)
        if found:
            return kind, found.group(0)
    for kind, pattern in SENSITIVE_ZH_RE.items():
        found = pattern.search(text)
        if found:
            return kind, found.group(0)
    return None


def _words(text: str) -> set[str]:
    """Latin words, and Chinese as character pairs (the usual unit of a Chinese word)."""
    pairs = {run[i:i + 2] for run in HAN.findall(text) for i in range(max(1, len(run) - 1))}
    return set(WORDS.findall(text.lower())) | pairs


def repeated(signals: Signals) -> str | None:
    """The customer asks again what they asked in the last three turns (the answer did not help)."""
    best = signals.matches[0].faq_id if signals.matches else None
    current = _words(signals.text)
    for turn in signals.history[-3:]:
        if best and turn.outcome == "answer" and turn.faq_id == best:
            return f"asked again about '{best}' after it was answered"
        earlier = _words(turn.text)
        if len(current) >= 3 and len(earlier) >= 3:
            overlap = len(current & earlier) / len(current | earlier)
            if overlap >= 0.5:
                return f"repeated a question ({overlap:.0%} the same words)"
    return None


def frustration(signals: Signals, th: Thresholds) -> tuple[float, list[str]]:
    """Points for each frustration sign, with what was seen; escalate at th.frustration_threshold."""
    points: list[tuple[float, str]] = []
    cues = set(signals.cues)
    if "frustration_phrase" in cues:
        points.append((1.0, "says the help is not working"))
    if "profanity" in cues:
        points.append((1.0, "profanity"))
    if "shouting" in cues:
        points.append((0.5, "shouting (capitals)"))
    if "exclamations" in cues:
        points.append((0.5, "!!!"))
    if "correction" in cues:
        after_reply = bool(signals.history) and signals.history[-1].outcome in ("answer", "clarify", "miss")
        # "That's not what I asked" right after the bot replied: that reply missed; a person now.
        points.append((th.frustration_threshold if after_reply else 1.0,
                       "says the last reply missed its question" if after_reply else "says it was not understood"))
    again = repeated(signals)
    if again:
        points.append((1.0, again))
    if signals.misses:
        points.append((0.75 * signals.misses, f"{signals.misses} unhelpful answer(s) in a row"))
    scored = [t.sentiment for t in signals.history[-3:] if t.sentiment is not None]
    if signals.sentiment is not None and scored and max(scored) - signals.sentiment >= 0.6:
        points.append((1.0, f"sentiment fell from {max(scored):.2f} to {signals.sentiment:.2f}"))
    return sum(p for p, _ in points), [f"{what} (+{p:g})" for p, what in points]


MOOD_CUES = ("frustration_phrase", "profanity", "shouting", "exclamations", "correction", "displeasure")


def _about_the_customer(signals: Signals, th: Thresholds) -> bool:
    """Negative words can describe the problem ("it arrived broken", "my parcel never came") or the
    customer ("I'm really unhappy", "that doesn't help"). A run of negative messages escalates
    only when it is about the customer: a mood cue somewhere in the run, or a negative message
    the knowledge base cannot answer (so it is not a problem description it covers)."""
    recent = [*signals.history[-(max(1, th.sentiment_turns) - 1):], None] if th.sentiment_turns > 1 else [None]
    if any(c in MOOD_CUES for c in signals.cues) or any(c in MOOD_CUES for t in recent if t for c in t.cues):
        return True
    best = signals.matches[0].score if signals.matches else 0.0
    return signals.route == REQUEST_HUMAN or best < th.faq_threshold


def _unhappy(signals: Signals, th: Thresholds) -> bool:
    """Leaving is sensitive only from an unhappy customer (churn): a mood cue, or clearly negative.
    "How do I delete my account?" reads slightly negative to the sentiment model and is an FAQ."""
    if signals.sentiment is None or signals.sentiment >= -0.2:
        return False
    return any(c in MOOD_CUES for c in signals.cues) or signals.sentiment <= th.sentiment_threshold


def _answerable(signals: Signals, th: Thresholds) -> bool:
    """The knowledge base would answer this message (its best entry reaches the answer threshold)."""
    return signals.route in (FAQ, FALLBACK) and bool(signals.matches) and signals.matches[0].score >= th.faq_threshold


def mood_reasons(signals: Signals, th: Thresholds, priority: bool) -> list[Reason]:
    """Negative sentiment (sustained, or one very angry message) and frustration."""
    reasons: list[Reason] = []
    threshold = th.sentiment_threshold + (0.2 if priority else 0.0)
    if signals.sentiment is not None:
        window = [t.sentiment for t in signals.history if t.sentiment is not None][-(th.sentiment_turns - 1):] if th.sentiment_turns > 1 else []
        window = [*window, signals.sentiment]
        mean = sum(window) / len(window)
        angry_cues = [c for c in signals.cues if c in ("frustration_phrase", "profanity", "shouting", "exclamations")]
        if angry_cues == ["profanity"] and _answerable(signals, th):
            # Swearing in passing in a question the knowledge base answers ("where do I see the
            # f***ing cancellation fee?") is register, not a demand for a person: answer it. If the
            # mood goes on, the next negative message escalates (a mood cue is in the run).
            angry_cues = []
        if len(window) >= th.sentiment_turns and mean <= threshold and signals.sentiment <= threshold / 2 and _about_the_customer(signals, th):
            reasons.append(Reason(
                "negative_sentiment", f"sentiment {mean:.2f} over {len(window)} turns <= {threshold:.2f}",
                {"sentiment": round(mean, 3), "turns": len(window), "threshold": round(threshold, 3), "scores": [round(s, 3) for s in window]},
            ))
        elif signals.sentiment <= th.strong_negative and angry_cues:
            reasons.append(Reason(
                "negative_sentiment", f"sentiment {signals.sentiment:.2f} <= {th.strong_negative:.2f} in one message ({', '.join(angry_cues)})",
                {"sentiment": round(signals.sentiment, 3), "turns": 1, "threshold": th.strong_negative, "cues": angry_cues},
            ))
    score, seen = frustration(signals, th)
    limit = th.frustration_threshold - (0.5 if priority else 0.0)
    if score >= limit:
        reasons.append(Reason("frustration", f"frustration {score:g} >= {limit:g}: {', '.join(seen)}", {"frustration": score, "threshold": limit, "signs": seen}))
    return reasons


def decide(signals: Signals, th: Thresholds = Thresholds()) -> Decision:
    """Combine every signal into one decision with its reasons."""
    priority = bool(signals.tier and signals.tier in th.priority_tiers)
    escalations: list[Reason] = []
    if signals.route == REQUEST_HUMAN:
        escalations.append(Reason("customer_request", "the customer asked for a person", {"intent": signals.intent, "confidence": round(signals.confidence, 3)}))
    topic = sensitive_topic(signals.text)
    if topic and (topic[0] != "cancellation" or _unhappy(signals, th)):
        escalations.append(Reason("sensitive_topic", f"sensitive topic: {topic[0]} ('{topic[1]}')", {"topic": topic[0], "phrase": topic[1]}))
    escalations += mood_reasons(signals, th, priority)
    score, _ = frustration(signals, th)
    if escalations:
        escalations.sort(key=lambda r: PRIORITY.index(r.code))
        return Decision("escalate", tuple(escalations + _retrieval_context(signals, th)), frustration=score)
    return _answer_or_miss(signals, th, priority, score)


def _retrieval_context(signals: Signals, th: Thresholds) -> list[Reason]:
    """The FAQ and NLU values, so an agent sees what the bot would have answered."""
    if not signals.matches:
        return []
    best = signals.matches[0]
    relation = ">=" if best.score >= th.faq_threshold else "<"
    return [Reason("faq_score", f"best FAQ score {best.score:.2f} {relation} {th.faq_threshold:.2f} ({best.faq_id})",
                   {"faq_id": best.faq_id, "score": round(best.score, 4), "threshold": th.faq_threshold})]


def _answer_or_miss(signals: Signals, th: Thresholds, priority: bool, score: float) -> Decision:
    if signals.route in (FAQ, FALLBACK):
        if signals.chosen_faq:
            return Decision("answer", (Reason("chosen", f"the customer chose '{signals.chosen_faq}'", {"faq_id": signals.chosen_faq}),), faq_id=signals.chosen_faq, frustration=score)
        if refers_to_nothing_said(signals.text):
            # "that one", "same as last time": nothing to look up, whatever the knowledge base
            # scores (a guess would be arbitrary); a miss, and two in a row bring in a person.
            return _miss(signals, th, priority, score, "vague", f"'{signals.text.strip()[:60]}' refers to something not said: nothing to look up")
        just_asked = bool(signals.history and signals.history[-1].outcome == "clarify")
        verdict = retrieval.decide(signals.matches, th.retrieval(), allow_clarify=not just_asked)
        if verdict.action == retrieval.CLARIFY:
            by_id = {m.faq_id: m for m in signals.matches}
            options = tuple(by_id.get(o.faq_id) or Candidate(o.faq_id, o.score, o.question) for o in verdict.options)
            return Decision("clarify", (Reason(verdict.code, verdict.reason, verdict.values),), options=options, frustration=score)
        if verdict.action == retrieval.ANSWER:
            return Decision("answer", (Reason(verdict.code, verdict.reason, verdict.values),), faq_id=verdict.faq_id, frustration=score)
    best_score = signals.matches[0].score if signals.matches else 0.0
    if signals.route == OUT_OF_SCOPE:
        kind, detail = "out_of_scope", "question outside what the assistant covers"
    elif signals.route == FALLBACK:
        kind, detail = "nlu_fallback", f"NLU confidence {signals.confidence:.2f} below the fallback threshold; best FAQ score {best_score:.2f} < {th.faq_threshold:.2f}"
    else:
        kind, detail = "low_faq_confidence", f"best FAQ score {best_score:.2f} < {th.faq_threshold:.2f}"
    return _miss(signals, th, priority, score, kind, detail)


def _miss(signals: Signals, th: Thresholds, priority: bool, score: float, kind: str, detail: str) -> Decision:
    """One more unanswered turn; a person when that makes too many in a row."""
    best_score = signals.matches[0].score if signals.matches else 0.0
    values = {"best_score": round(best_score, 4), "threshold": th.faq_threshold, "confidence": round(signals.confidence, 3), "intent_gap": round(signals.intent_gap, 3)}
    misses = signals.misses + 1
    allowed = 1 if priority else th.max_misses
    if misses >= allowed:
        reasons = [Reason(kind, f"{detail}; {misses} unanswered turn(s) in a row", {**values, "misses": misses})]
        if priority:
            reasons.append(Reason("priority_customer", f"{signals.tier} customer: a person after {allowed} unanswered turn", {"tier": signals.tier}))
        return Decision("escalate", tuple(reasons), miss_kind=kind, frustration=score)
    return Decision("miss", (Reason(kind, detail, values),), miss_kind=kind, frustration=score)
