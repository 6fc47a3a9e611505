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

MISSES = "misses"  # consecutive turns the bot could not answer, whatever the cause
MISS_KINDS = "miss_kinds"


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
    return [SlotSet(MISSES, 0), SlotSet(MISS_KINDS, [])]


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
    return [SlotSet(MISSES, 0), SlotSet(MISS_KINDS, [])]


def miss(
    dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, response: str, detail: str, matches: list[Match], **info: Any
) -> list[EventType]:
    """One more turn the bot could not answer; the `max_misses`-th in a row brings a person."""
    misses = _counter(tracker, MISSES) + 1
    kinds = [*(tracker.get_slot(MISS_KINDS) or []), kind][-settings().max_misses :]
    if misses >= settings().max_misses:
        return escalate(
            dispatcher, tracker, kind, f"{detail}; {misses} unanswered turns in a row ({', '.join(kinds)})",
            candidates=_candidates(matches), **info,
        )
    dispatcher.utter_message(json_message={"tandem": {"miss": {"kind": kind, **info}, "candidates": _candidates(matches)}})
    dispatcher.utter_message(response=response)
    return [SlotSet(MISSES, misses), SlotSet(MISS_KINDS, kinds)]


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
        best = matches[0].score if matches else 0.0
        return miss(
            dispatcher, tracker, "low_faq_confidence", "utter_rephrase",
            f"best FAQ score {best:.2f} < {threshold:.2f}", matches, best_score=round(best, 4),
        )


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
        confidence = _nlu_signals(tracker)["confidence"]
        best = matches[0].score if matches else 0.0
        return miss(
            dispatcher, tracker, "nlu_fallback", "utter_default",
            f"NLU confidence {confidence:.2f} below the fallback threshold; best FAQ score {best:.2f} < {threshold:.2f}",
            matches, confidence=confidence, best_score=round(best, 4),
        )


class ActionOutOfScope(Action):
    """Say what the assistant can help with; an off-topic turn counts as a miss."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return miss(dispatcher, tracker, "out_of_scope", "utter_out_of_scope", "question outside what the assistant covers", [])


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


# Load the index and the embedding model when the action server imports this module, so the
# first customer does not wait for it.
knowledge_base()
