"""Custom actions. actions/policy.py decides; these carry it out; the router in the web process acts.

Every action gathers the signals (NLU, sentiment from nlu/sentiment.py, the conversation so far,
the FAQ search) and asks the policy for one decision: answer, clarify ("Did you mean A or B?"),
miss (ask to rephrase) or escalate. When a person is needed, an action says so with a custom
typed decision (conversations/decisions.BotDecision, the custom payload `{"tandem": {...}}`) and the router creates the
case and pauses Rasa: the action server never touches the hand-off queue itself.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge_access import knowledge_base, persona, settings
from actions.policy import (
    FALLBACK, FAQ, REQUEST_HUMAN, Candidate, Decision, Thresholds, decide, signals_from_tracker,
)
from conversations.decisions import Answered, BotDecision, Candidate as BotCandidate, Escalation, Missed
from knowledge import decision as retrieval
from core import texts
from core.language import detect
from core.settings import Business
from knowledge.base import Match
from knowledge.query_vector import QueryVector

MISSES = "misses"  # consecutive turns the bot could not answer, whatever the cause
MISS_KINDS = "miss_kinds"
TIER = "tier"  # optional slot; the channel metadata {"tier"} is read too


def _counter(tracker: Tracker, slot: str) -> int:
    value = tracker.get_slot(slot)
    return int(value) if isinstance(value, (int, float)) else 0


def _nlu_signals(tracker: Tracker) -> dict[str, Any]:
    message = tracker.latest_message or {}
    ranking = message.get("intent_ranking") or []
    intent = message.get("intent") or {}
    return {
        "intent": intent.get("name"),
        "confidence": round(float(intent.get("confidence") or 0.0), 4),
        "ranking": [{"name": r.get("name"), "confidence": round(float(r.get("confidence") or 0), 4)} for r in ranking[:3]],
        "entities": [{"entity": e.get("entity"), "value": e.get("value")} for e in message.get("entities") or []],
    }


def _sentiment(tracker: Tracker) -> dict[str, Any]:
    found = (tracker.latest_message or {}).get("sentiment") or {}
    return {k: found.get(k) for k in ("label", "score", "cues", "english", "method")} if found else {}


async def _search(text: str, carried: QueryVector | None) -> list[Match]:
    """Embedding and FAISS run in a worker thread: the action server's loop stays free."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, knowledge_base().search_with, text, carried, 5)


def _query_source(carried: QueryVector | None) -> str:
    """Where the search's query vector came from: "rasa" (nlu/embedding.py, reused) or "action"
    (embedded here: no vector in the parse data, or another encoder than the knowledge base's)."""
    return "rasa" if carried is not None and carried.encoder == knowledge_base().encoder_name else "action"


async def live_thresholds() -> Thresholds:
    """Settings, with the answer/clarify part from the knowledge base's live self-calibration
    (the same knowledge.decision.Thresholds.from_settings the editor's preview uses)."""
    loop = asyncio.get_running_loop()
    calibration = await loop.run_in_executor(None, knowledge_base().calibration)
    return thresholds().with_retrieval(retrieval.Thresholds.from_settings(settings(), calibration))


def _candidates(matches: list[Match]) -> tuple[BotCandidate, ...]:
    return tuple(BotCandidate(m.faq_id, m.score, m.question) for m in matches)


def thresholds() -> Thresholds:
    return Thresholds.from_settings(settings())


def escalate(dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision, business: Business, **signals: Any) -> list[EventType]:
    """Tell the customer a person is coming and the router why (reasons with values); reset the miss counters."""
    case_signals = {
        "reasons": decision.to_dict()["reasons"], "frustration": round(decision.frustration, 2), "sentiment": _sentiment(tracker),
        "nlu": _nlu_signals(tracker), **signals,
    }
    said = BotDecision("escalate", sentiment=_sentiment(tracker), escalation=Escalation(decision.reason, decision.detail, case_signals))
    dispatcher.utter_message(json_message=said.to_payload())
    dispatcher.utter_message(text=business.text("handoff", _language(tracker)))
    return [SlotSet(MISSES, 0), SlotSet(MISS_KINDS, [])]


def answer(dispatcher: CollectingDispatcher, tracker: Tracker, best: Match, matches: list[Match], decision: Decision,
           query: dict[str, str] | None = None) -> list[EventType]:
    said = BotDecision("answer", _candidates(matches), _nlu_signals(tracker), _sentiment(tracker), tuple(decision.to_dict()["reasons"]),
                       answered=Answered(best.faq_id, best.score, best.category), query_vector=(query or {}).get("query_vector", ""))
    dispatcher.utter_message(json_message=said.to_payload())
    dispatcher.utter_message(text=best.answer)
    return [SlotSet(MISSES, 0), SlotSet(MISS_KINDS, [])]


def clarify(dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision, matches: list[Match],
            query: dict[str, str] | None = None) -> list[EventType]:
    """"Did you mean A or B?" with buttons whose payloads name the FAQ (`/faq{"faq_id": ...}`)."""
    a, b = decision.options
    buttons = [{"title": o.question, "payload": "/faq" + json.dumps({"faq_id": o.faq_id})} for o in decision.options]
    options = tuple(BotCandidate(o.faq_id, o.score, o.question) for o in decision.options)
    said = BotDecision("clarify", _candidates(matches), _nlu_signals(tracker), _sentiment(tracker), tuple(decision.to_dict()["reasons"]),
                       options=options, query_vector=(query or {}).get("query_vector", ""))
    dispatcher.utter_message(json_message=said.to_payload())
    dispatcher.utter_message(text=texts.notice("did_you_mean", _language(tracker), a=a.question, b=b.question), buttons=buttons)
    return []  # neither answered nor missed: the counters stay


def miss(dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision, text: str, matches: list[Match],
         query: dict[str, str] | None = None) -> list[EventType]:
    """One more turn the bot could not answer (the policy escalates when that is too many)."""
    kind = decision.miss_kind or "unknown"
    kinds = [*(tracker.get_slot(MISS_KINDS) or []), kind][-max(1, thresholds().max_misses):]
    values = decision.reasons[0].values if decision.reasons else {}
    info = {k: values[k] for k in ("best_score", "confidence") if k in values}
    said = BotDecision("miss", _candidates(matches), {}, _sentiment(tracker), tuple(decision.to_dict()["reasons"]), missed=Missed(kind, info),
                       query_vector=(query or {}).get("query_vector", ""))
    dispatcher.utter_message(json_message=said.to_payload())
    dispatcher.utter_message(text=text)
    return [SlotSet(MISSES, decision.misses_after(_counter(tracker, MISSES))), SlotSet(MISS_KINDS, kinds)]


async def run_policy(dispatcher: CollectingDispatcher, tracker: Tracker, route: str, miss_text: str) -> list[EventType]:
    """The one path every action takes: gather signals, ask the policy, carry out its decision."""
    parse = dict(tracker.latest_message or {})
    text = parse.get("text") or ""
    chosen = next((e.get("value") for e in parse.get("entities") or [] if e.get("entity") == "faq_id"), None)
    searching = route in (FAQ, FALLBACK) and not chosen and bool(text.strip())
    carried = QueryVector.from_parse(parse) if searching else None
    matches = await _search(text, carried) if searching else []
    query = {"query_vector": _query_source(carried)} if searching else {}
    metadata = _metadata(tracker)
    tier = tracker.get_slot(TIER) or metadata.get("tier")
    signals = signals_from_tracker(
        route, {**parse, "metadata": metadata}, tracker.events, [Candidate(m.faq_id, m.score, m.question, m.rank_score) for m in matches],
        _counter(tracker, MISSES), tier,
    )
    decision = decide(signals, await live_thresholds())
    business = await asyncio.get_running_loop().run_in_executor(None, persona)  # cached; one cheap query a second at most
    if decision.action == "escalate":
        return escalate(dispatcher, tracker, decision, business, candidates=[c.to_dict() for c in _candidates(matches)], **query,
                        **({"miss_kind": decision.miss_kind} if decision.miss_kind else {}))
    if decision.action == "answer" and decision.faq_id:
        best = next((m for m in matches if m.faq_id == decision.faq_id), None) or _entry_match(decision.faq_id)
        if best is not None:
            return answer(dispatcher, tracker, best, matches, decision, query)
    if decision.action == "clarify":
        return clarify(dispatcher, tracker, decision, matches, query)
    return miss(dispatcher, tracker, decision, business.text(miss_text, _language(tracker)), matches, query)


def _entry_match(faq_id: str) -> Match | None:
    """The FAQ a customer picked from a "Did you mean" question (it may have been unpublished since)."""
    try:
        entry = knowledge_base().entry(faq_id)
    except Exception:  # noqa: BLE001 - unknown or deleted entry: treat as a miss
        return None
    return Match(entry.id, 1.0, entry.question, entry.answer, entry.category, entry.question)


def _metadata(tracker: Tracker) -> dict[str, Any]:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return dict(event.get("metadata") or {})
    return {}


def _language(tracker: Tracker) -> str:
    """The language to reply in: the router's (the latest customer message's, in the metadata),
    else that of the latest customer text (messages to an agent carry no language)."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        lang = (event.get("metadata") or {}).get("lang")
        if lang in ("en", "zh"):
            return str(lang)
        text = str(event.get("text") or "")
        if text and not text.startswith("/"):
            return detect(text)
    return "en"


class ActionAnswerFaq(Action):
    """Answer from the knowledge base, clarify between two close entries, or ask to rephrase."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return await run_policy(dispatcher, tracker, FAQ, "rephrase")


class ActionHandleFallback(Action):
    """Every message that is not conversation: the live knowledge base answers it, asks which of
    two entries is meant, or says it does not cover it (the business's refusal text)."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return await run_policy(dispatcher, tracker, FALLBACK, "refusal")


class ActionRequestHuman(Action):
    """The customer asked for a person: no arguing, connect them."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return await run_policy(dispatcher, tracker, REQUEST_HUMAN, "refusal")


# The text each conversation intent gets (core/settings.Business); an intent not listed is ignored.
REPLY_OF_INTENT = {
    "greet": "greeting", "goodbye": "goodbye", "thank": "welcome", "affirm": "glad", "deny": "deny",
    "bot_challenge": "bot_challenge", "EXTERNAL_handed_back": "back_to_bot",
}


class ActionReply(Action):
    """The business's text for a conversational intent, read from settings and editors' overrides
    at run time (core/persona.py), so a business speaks as itself without retraining Rasa."""

    def name(self) -> str:
        return "action_reply"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name") or ""
        key = REPLY_OF_INTENT.get(intent)
        if key is None:
            return []
        loop = asyncio.get_running_loop()
        business = await loop.run_in_executor(None, persona)  # at most one cheap query a second
        dispatcher.utter_message(text=business.text(key, _language(tracker)))
        # The router acts on it (a goodbye ends a bot-only conversation: the CSAT prompt).
        dispatcher.utter_message(json_message=BotDecision("reply", intent=intent).to_payload())
        return []


# Load the index and the embedding model when the action server imports this module, so the
# first customer does not wait for it.
knowledge_base()
