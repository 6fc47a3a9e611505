"""Custom actions. They decide; the router in Tandem's web process acts.

Answers come from the knowledge base. When a person is needed, an action says so with a custom
payload `{"tandem": {"escalate": {...}}}` and the router creates the case and pauses Rasa: the
action server never touches the hand-off queue itself.
"""
from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge_access import knowledge_base, settings
from knowledge.base import Match

FAQ_MISSES = "faq_misses"
NLU_FALLBACKS = "nlu_fallbacks"


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


async def _search(text: str) -> list[Match]:
    """Embedding and FAISS run in a worker thread: the action server's loop stays free."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, knowledge_base().search, text, 5)


def _candidates(matches: list[Match]) -> list[dict[str, Any]]:
    return [{"faq_id": m.faq_id, "score": round(m.score, 4), "question": m.question} for m in matches]


def escalate(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, detail: str, **signals: Any) -> list[EventType]:
    """Tell the customer a person is coming and the router why; reset the miss counters."""
    dispatcher.utter_message(
        json_message={"tandem": {"escalate": {"reason": reason, "detail": detail, "nlu": _nlu_signals(tracker), **signals}}}
    )
    dispatcher.utter_message(response="utter_handoff")
    return [SlotSet(FAQ_MISSES, 0), SlotSet(NLU_FALLBACKS, 0)]


def answer(dispatcher: CollectingDispatcher, tracker: Tracker, best: Match, matches: list[Match]) -> list[EventType]:
    dispatcher.utter_message(
        json_message={
            "tandem": {
                "answer": {"faq_id": best.faq_id, "score": round(best.score, 4), "category": best.category},
                "candidates": _candidates(matches),
                "nlu": _nlu_signals(tracker),
            }
        }
    )
    dispatcher.utter_message(text=best.answer)
    return [SlotSet(FAQ_MISSES, 0), SlotSet(NLU_FALLBACKS, 0)]


class ActionAnswerFaq(Action):
    """Answer from the knowledge base, or ask to rephrase; the second miss in a row escalates."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        matches = await _search(text)
        threshold = settings().faq_threshold
        if matches and matches[0].score >= threshold:
            return answer(dispatcher, tracker, matches[0], matches)
        misses = _counter(tracker, FAQ_MISSES) + 1
        best = matches[0].score if matches else 0.0
        if misses >= settings().max_misses:
            return escalate(
                dispatcher,
                tracker,
                "low_faq_confidence",
                f"best FAQ score {best:.2f} < {threshold:.2f}, {misses} times in a row",
                candidates=_candidates(matches),
            )
        dispatcher.utter_message(json_message={"tandem": {"miss": {"kind": "low_faq_confidence", "best_score": round(best, 4)}, "candidates": _candidates(matches)}})
        dispatcher.utter_message(response="utter_rephrase")
        return [SlotSet(FAQ_MISSES, misses)]


class ActionHandleFallback(Action):
    """NLU was unsure. The knowledge base may still know the answer; if not, count a fallback."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        matches = await _search(text)
        threshold = settings().faq_threshold
        if matches and matches[0].score >= threshold:
            return answer(dispatcher, tracker, matches[0], matches)
        fallbacks = _counter(tracker, NLU_FALLBACKS) + 1
        confidence = _nlu_signals(tracker)["confidence"]
        if fallbacks >= settings().max_misses:
            return escalate(
                dispatcher,
                tracker,
                "nlu_fallback",
                f"NLU unsure {fallbacks} times in a row (last confidence {confidence:.2f})",
                candidates=_candidates(matches),
            )
        dispatcher.utter_message(json_message={"tandem": {"miss": {"kind": "nlu_fallback", "confidence": confidence}, "candidates": _candidates(matches)}})
        dispatcher.utter_message(response="utter_default")
        return [SlotSet(NLU_FALLBACKS, fallbacks)]


class ActionOutOfScope(Action):
    """Say what the assistant can help with; an off-topic turn counts as a miss."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        misses = _counter(tracker, FAQ_MISSES) + 1
        if misses >= settings().max_misses:
            return escalate(dispatcher, tracker, "out_of_scope", f"{misses} questions in a row outside what the assistant knows")
        dispatcher.utter_message(json_message={"tandem": {"miss": {"kind": "out_of_scope"}}})
        dispatcher.utter_message(response="utter_out_of_scope")
        return [SlotSet(FAQ_MISSES, misses)]


class ActionRequestHuman(Action):
    """The customer asked for a person: no arguing, connect them."""

    def name(self) -> str:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return escalate(dispatcher, tracker, "customer_request", "the customer asked for a person")


class ActionHandleComplaint(Action):
    """A complaint goes to a person (complaint handling starts with listening, not a FAQ)."""

    def name(self) -> str:
        return "action_handle_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_complaint_ack")
        return escalate(dispatcher, tracker, "complaint", "the customer has a complaint")
