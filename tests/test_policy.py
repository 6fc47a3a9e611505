"""The one decision module: each signal, its threshold, and the reasons with values."""
from __future__ import annotations

from actions.policy import (
    FALLBACK, FAQ, OUT_OF_SCOPE, REQUEST_HUMAN, ROUTE_OF_INTENT, Candidate, Signals, Thresholds, Turn, decide,
    signals_from_tracker, turns_from_events,
)

TH = Thresholds(faq_threshold=0.55, clarify_margin=0.03, clarify_floor=0.45, sentiment_threshold=-0.5, strong_negative=-0.8, frustration_threshold=2.0, max_misses=2)
TRACK = Candidate("orders-track-order", 0.82, "How can I track my order?")
CANCEL = Candidate("orders-cancel-order", 0.40, "Can I cancel my order?")


def sig(**kw: object) -> Signals:
    base: dict[str, object] = {"route": FAQ, "text": "where is my order", "sentiment": 0.0, "matches": (TRACK, CANCEL)}
    base.update(kw)
    return Signals(**base)  # type: ignore[arg-type]


def test_confident_match_is_answered() -> None:
    decision = decide(sig(), TH)
    assert decision.action == "answer" and decision.faq_id == "orders-track-order"
    assert "0.82 >= 0.55" in decision.detail


def test_low_score_is_a_miss_then_an_escalation_with_values() -> None:
    low = (Candidate("orders-track-order", 0.41), Candidate("shipping-costs", 0.30))
    first = decide(sig(matches=low), TH)
    assert first.action == "miss" and first.miss_kind == "low_faq_confidence"
    assert "best FAQ score 0.41 < 0.55" in first.detail
    second = decide(sig(matches=low, misses=1), TH)
    assert second.action == "escalate" and second.reason == "low_faq_confidence"
    assert "2 unanswered turn(s) in a row" in second.detail


def test_two_close_faqs_ask_which_one_but_never_twice_in_a_row() -> None:
    close = (Candidate("returns-how-to", 0.58, "How do I return an item?"), Candidate("returns-cost", 0.57, "Do returns cost anything?"))
    decision = decide(sig(matches=close), TH)
    assert decision.action == "clarify"
    assert [o.faq_id for o in decision.options] == ["returns-how-to", "returns-cost"]
    assert "differ by 0.01 < the clarify margin 0.03" in decision.detail
    again = decide(sig(matches=close, history=(Turn("how do returns work", outcome="clarify"),)), TH)
    assert again.action == "answer"


def test_chosen_option_is_answered() -> None:
    decision = decide(sig(text='/faq{"faq_id": "returns-cost"}', matches=(), chosen_faq="returns-cost", sentiment=None), TH)
    assert decision.action == "answer" and decision.faq_id == "returns-cost"


def test_sustained_negative_sentiment_escalates_with_its_numbers() -> None:
    history = (Turn("I am really annoyed, my parcel is late again", sentiment=-0.6, cues=("displeasure",)),)
    decision = decide(sig(sentiment=-0.84, history=history), TH)
    assert decision.action == "escalate" and decision.reason == "negative_sentiment"
    assert "sentiment -0.72 over 2 turns <= -0.50" in decision.detail
    assert decision.reasons[0].values["scores"] == [-0.6, -0.84]
    assert any(r.code == "faq_score" for r in decision.reasons)  # the agent sees what the bot would have answered


def test_one_negative_message_alone_is_answered() -> None:
    """"my kettle arrived broken" is negative but a FAQ answers it: no person yet."""
    assert decide(sig(sentiment=-0.7), TH).action == "answer"


def test_one_furious_message_with_cues_escalates() -> None:
    decision = decide(sig(sentiment=-0.93, cues=("frustration_phrase", "exclamations")), TH)
    assert decision.reason == "negative_sentiment"
    assert "-0.93 <= -0.80 in one message (frustration_phrase, exclamations)" in decision.detail


def test_frustration_adds_up_over_the_conversation() -> None:
    history = (Turn("how do i track my order", sentiment=0.1, outcome="answer", faq_id="orders-track-order"),)
    decision = decide(sig(sentiment=-0.3, cues=("shouting",), history=history, misses=1), TH)
    assert decision.action == "escalate" and decision.reason == "frustration"
    assert "asked again about 'orders-track-order'" in decision.detail and "shouting" in decision.detail
    calm = decide(sig(sentiment=0.1, history=history), TH)
    assert calm.action == "answer"  # one repeat alone is 1 point < 2


def test_sensitive_topics() -> None:
    assert decide(sig(text="the charger caught fire and burned my hand"), TH).reason == "sensitive_topic"
    assert decide(sig(text="I will take you to small claims court"), TH).reasons[0].values["topic"] == "legal"
    assert decide(sig(text="there's an unauthorised charge on my card"), TH).reasons[0].values["topic"] == "fraud"
    # leaving calmly is an FAQ; leaving angrily is churn
    assert decide(sig(text="how do I delete my account", sentiment=0.0), TH).action == "answer"
    assert decide(sig(text="delete my account, I'm done", sentiment=-0.6), TH).reason == "sensitive_topic"


def test_routes_from_the_intent() -> None:
    assert decide(sig(route=REQUEST_HUMAN), TH).reason == "customer_request"
    # no topic intent decides anything: Rasa keeps the conversation, the rest is the knowledge route
    assert set(ROUTE_OF_INTENT) == {"faq", "nlu_fallback", "request_human"}
    assert decide(sig(route=OUT_OF_SCOPE, matches=()), TH).miss_kind == "out_of_scope"
    fallback = decide(sig(route=FALLBACK, matches=(Candidate("x", 0.3),), confidence=0.31), TH)
    assert fallback.action == "miss" and "NLU confidence 0.31" in fallback.detail


def test_priority_tier_escalates_sooner() -> None:
    low = (Candidate("orders-track-order", 0.41),)
    assert decide(sig(matches=low), TH).action == "miss"
    gold = decide(sig(matches=low, tier="gold"), TH)
    assert gold.action == "escalate" and any(r.code == "priority_customer" for r in gold.reasons)


def test_history_comes_from_tracker_events_and_restarts_after_hand_back() -> None:
    def user(text: str, score: float) -> dict:
        return {"event": "user", "text": text, "parse_data": {"text": text, "intent": {"name": "faq"}, "sentiment": {"score": score, "cues": [], "english": True}}}

    answered = {"event": "bot", "data": {"custom": {"tandem": {"answer": {"faq_id": "orders-track-order"}}}}}
    events = [user("where is my order", -0.2), answered, {"event": "resume"}, user("hi again", 0.3), user("where is it", -0.4)]
    turns = turns_from_events(events)
    assert [t.text for t in turns] == ["hi again", "where is it"]
    before = turns_from_events(events[:2])
    assert before[0].outcome == "answer" and before[0].faq_id == "orders-track-order"
    parse = {"text": "where is it", "intent": {"name": "faq", "confidence": 0.9}, "intent_ranking": [{"confidence": 0.9}, {"confidence": 0.6}],
             "sentiment": {"score": -0.4, "cues": ["shouting"], "english": True}, "metadata": {"tier": "Gold"}}
    signals = signals_from_tracker(FAQ, parse, events, [TRACK], misses=0)
    assert [t.text for t in signals.history] == ["hi again"]
    assert abs(signals.intent_gap - 0.3) < 1e-9 and signals.tier == "gold" and signals.cues == ("shouting",)


def test_non_english_turns_do_not_count_as_sentiment() -> None:
    parse = {"text": "wo ist mein paket", "intent": {"name": "faq", "confidence": 0.5}, "sentiment": {"score": 0.0, "english": False}}
    assert signals_from_tracker(FAQ, parse, [], [TRACK], 0).sentiment is None


def test_thresholds_come_from_settings() -> None:
    from core.settings import load_settings

    th = Thresholds.from_settings(load_settings(sentiment_threshold=-0.4, tiers={"gold": {"escalate_sooner": True}, "platinum": {"priority": 30, "escalate_sooner": True}, "silver": {"priority": 10}}))
    assert th.sentiment_threshold == -0.4 and th.priority_tiers == ("gold", "platinum")


# -- calibration (./tandem calibrate) -------------------------------------------------------------
def test_calibration_writes_settings_keeping_comments(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from actions.calibration import write_settings

    path = tmp_path / "tandem.yml"
    path.write_text("# Tandem's settings\nweb_port: 8000\n# answer threshold\nfaq_threshold: 0.55\n")
    write_settings(path, {"faq_threshold": 0.61, "sentiment_threshold": -0.6})
    assert path.read_text() == "# Tandem's settings\nweb_port: 8000\n# answer threshold\nfaq_threshold: 0.61\nsentiment_threshold: -0.6\n"


def test_faq_threshold_is_the_lowest_meeting_the_target() -> None:
    from actions.calibration import faq_curve, pick_threshold

    best = [("a", 0.9), ("b", 0.7), ("x", 0.6), ("c", 0.5), ("y", 0.4)]
    labels = ["a", "b", "c", "c", "escalate"]  # the 0.6 answer is wrong, the 0.4 one should not be answered
    curve = faq_curve(best, labels, [0.4, 0.5, 0.6, 0.7, 0.8])
    assert [round(r["precision"], 2) for r in curve] == [0.6, 0.75, 0.67, 1.0, 1.0]
    assert [round(r["coverage"], 2) for r in curve] == [0.75, 0.75, 0.5, 0.5, 0.25]
    assert pick_threshold(curve, 0.9)["threshold"] == 0.7
    assert pick_threshold(curve, 0.7)["threshold"] == 0.5


def test_replay_escalates_where_the_actions_would() -> None:
    from actions.calibration import Conversation, ParsedTurn, replay, score_escalations

    def turn(text: str, intent: str, score: float, cues: list[str], faq: float) -> ParsedTurn:
        parse = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "sentiment": {"score": score, "cues": cues, "english": True}}
        return ParsedTurn(text, parse, [Candidate("orders-track-order", faq), Candidate("shipping-costs", faq - 0.2)])

    turns = [turn("hi", "greet", 0.2, [], 0.2), turn("where is my order", "faq", -0.2, [], 0.8),
             turn("still nothing and nobody answers", "faq", -0.7, [], 0.5), turn("useless!!!", "faq", -0.95, ["frustration_phrase"], 0.3)]
    at, decisions = replay(turns, TH)
    assert at == 3 and decisions[0] is None and decisions[1].action == "answer"
    # -0.2 then -0.7 is not yet -0.5 on average, but the mood fell 0.9 from the greeting and the
    # customer asks about the FAQ they were just given: 2 frustration points
    assert decisions[2].reason == "frustration"
    assert "sentiment fell from 0.20 to -0.70" in decisions[2].detail and "asked again about 'orders-track-order'" in decisions[2].detail
    conversations = [Conversation("a", "souring", [], 3), Conversation("b", "calm", [], None), Conversation("c", "angry", [], 2)]
    scores = score_escalations(conversations, {"a": 3, "b": 2, "c": None})
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 1, 1) and scores["precision"] == 0.5


def test_leaving_angrily_is_sensitive_for_any_business() -> None:
    """The churn pattern names no shop: "I'm done with you", "never shopping with you again"."""
    for text in ("I'm done with you, terrible service", "I'm leaving your company after this", "never ordering from you again"):
        assert decide(sig(text=text, sentiment=-0.7), TH).reason == "sensitive_topic", text


def test_calm_problem_descriptions_the_knowledge_base_answers_are_questions() -> None:
    """Negative words about the problem, not the customer: answered, even over two turns."""
    broken = Candidate("returns-damaged", 0.74, "My item arrived damaged")
    first = Turn("my parcel hasn't arrived", sentiment=-0.7, outcome="answer", faq_id="orders-track-order")
    decision = decide(sig(text="and the vase came broken", sentiment=-0.75, matches=(broken,), history=(first,)), TH)
    assert decision.action == "answer", decision.detail
    # the same run of negative messages with the customer's own displeasure is about the customer
    upset = decide(sig(text="I'm really unhappy, the vase came broken", sentiment=-0.75, matches=(broken,), history=(first,),
                       cues=("displeasure",)), TH)
    assert upset.action == "escalate" and upset.reason == "negative_sentiment"
    # ... and so is a negative message the knowledge base cannot answer
    unanswerable = decide(sig(text="this has been handled so badly", sentiment=-0.75, matches=(Candidate("x", 0.3),), history=(first,)), TH)
    assert unanswerable.action == "escalate" and unanswerable.reason == "negative_sentiment"


def test_saying_the_answer_missed_right_after_it_brings_a_person() -> None:
    answered = Turn("how do I return an item", sentiment=0.0, outcome="answer", faq_id="returns-how-to")
    decision = decide(sig(text="that's not what I asked, how much do returns cost", cues=("correction",), history=(answered,)), TH)
    assert decision.action == "escalate" and decision.reason == "frustration"
    assert "missed its question" in decision.detail
    # the same words as an opening message are only one sign
    assert decide(sig(text="that's not what I asked, how much do returns cost", cues=("correction",)), TH).action == "answer"


def test_swearing_in_passing_in_an_answerable_question_is_answered_then_watched() -> None:
    """Profanity as register ("where do I see the f***ing fee?") on a question the knowledge base
    answers: answered. Swearing with other anger cues, or on a question it cannot answer, or a
    second negative message after it: a person."""
    text = "where can i see the fucking cancellation fee?"
    assert decide(sig(text=text, sentiment=-0.9, cues=("profanity",)), TH).action == "answer"
    assert decide(sig(text=text, sentiment=-0.9, cues=("profanity", "exclamations")), TH).reason == "negative_sentiment"
    assert decide(sig(text=text, sentiment=-0.9, cues=("profanity",), matches=(CANCEL,)), TH).action == "escalate"
    first = Turn(text, sentiment=-0.9, cues=("profanity",), outcome="answer", faq_id="orders-track-order")
    again = decide(sig(text="that fee is a joke", sentiment=-0.8, history=(first,)), TH)
    assert again.action == "escalate" and again.reason == "negative_sentiment"


def test_leaving_calmly_is_an_faq_even_when_it_reads_a_little_negative() -> None:
    assert decide(sig(text="How do I delete my account?", sentiment=-0.35), TH).action == "answer"
    assert decide(sig(text="delete my account, this is so annoying", sentiment=-0.35, cues=("displeasure",)), TH).reason == "sensitive_topic"


def test_a_message_that_only_points_at_something_unsaid_is_not_guessed() -> None:
    """"that one", "same as last time": nothing to look up, whatever the knowledge base scores;
    two such turns in a row bring a person. A short message with a content word is searched."""
    from actions.policy import refers_to_nothing_said

    for text in ("that one", "same as last time", "the other one i said", "about my thing from before", "what about it?", "erm hello?"):
        assert refers_to_nothing_said(text), text
    for text in ("returns?", "tracking", "the blue one", "not working", "refund policy", "", "?"):
        assert not refers_to_nothing_said(text), text
    first = decide(sig(text="same as last time", matches=(TRACK,)), TH)
    assert first.action == "miss" and first.miss_kind == "vague" and "nothing to look up" in first.detail
    second = decide(sig(text="that one", matches=(TRACK,), misses=1), TH)
    assert second.action == "escalate" and second.reason == "vague"
