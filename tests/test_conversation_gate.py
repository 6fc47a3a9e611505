"""nlu/conversation.py: a conversational intent only when the message is nothing but that act.

The vocabulary is learnt from data/nlu.yml exactly as the component's train() does, so these
cases hold for the shipped training data; the real-stack tests (test_persona_e2e.py) show the
same through Rasa.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nlu.conversation import Vocabulary, judge, tokens

NLU = Path(__file__).resolve().parents[1] / "data" / "nlu.yml"


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    blocks = yaml.safe_load(NLU.read_text(encoding="utf-8"))["nlu"]
    return Vocabulary({w for b in blocks for line in b["examples"].splitlines() for w in tokens(line.strip().lstrip("- "))})


@pytest.mark.parametrize("text,intent", [
    ("hello!!", "greet"), ("hiii", "greet"), ("helo", "greet"), ("good morning to you all", "greet"),
    ("thnaks", "thank"), ("ok thanks, bye", "thank"), ("yes please", "affirm"), ("nope", "deny"),
    ("are you a robot?", "bot_challenge"),
])
def test_conversation_only_is_kept(vocabulary: Vocabulary, text: str, intent: str) -> None:
    assert judge(text, intent, vocabulary).keep, text


@pytest.mark.parametrize("text,intent", [
    ("hi, where is my parcel", "greet"), ("hi, my card was declined", "greet"), ("thanks, and how do I return it?", "thank"),
    ("yes, what are your opening hours", "affirm"), ("no, I want to cancel my subscription", "deny"),
    ("Can i have a card to my daughter?", "goodbye"), ("hmm", "affirm"), ("erm hello?", "greet"),
    ("are you a bot? my refund never came", "bot_challenge"),
])
def test_content_beyond_the_act_goes_to_the_knowledge_base(vocabulary: Vocabulary, text: str, intent: str) -> None:
    verdict = judge(text, intent, vocabulary)
    assert not verdict.keep and verdict.unknown, text


@pytest.mark.parametrize("text,intent", [("that one", "goodbye"), ("the stuff", "thank"), ("so?", "affirm"), ("what about it", "affirm")])
def test_pointing_at_nothing_is_no_conversational_act(vocabulary: Vocabulary, text: str, intent: str) -> None:
    """Every word may be in some conversation example, yet "that one" is no goodbye (DIET's guess)."""
    verdict = judge(text, intent, vocabulary)
    assert not verdict.keep and ("pointing" in verdict.reason or verdict.unknown), text


@pytest.mark.parametrize("text,intent", [
    ("that's not helpful at all", "deny"), ("no, that's not what I asked", "deny"), ("thanks for nothing, useless", "thank"),
    ("ok I'm really annoyed now", "affirm"), ("不是我问的", "deny"),
])
def test_a_reply_with_a_mood_is_no_bare_act(vocabulary: Vocabulary, text: str, intent: str) -> None:
    """"No, that's not helpful at all" is no plain "no": the policy must see the mood (souring customers)."""
    verdict = judge(text, intent, vocabulary)
    assert not verdict.keep and "feels" in verdict.reason, (text, verdict)


@pytest.mark.parametrize("text,intent", [("are you real?", "bot_challenge"), ("no thanks", "deny"), ("NO!!", "deny")])
def test_mood_rule_leaves_plain_acts_and_bot_challenges(vocabulary: Vocabulary, text: str, intent: str) -> None:
    assert judge(text, intent, vocabulary).keep, text


@pytest.mark.parametrize("text", ["agent", "human please", "I want to speak to someone about my refund",
                                  "can I talk to a person", "put me through to customer service", "is there a person I can chat to?",
                                  "can someone from your team help me with my booking", "help me contact a human agent"])
def test_requests_for_a_person_are_kept_whatever_the_topic(vocabulary: Vocabulary, text: str) -> None:
    assert judge(text, "request_human", vocabulary).keep, text


@pytest.mark.parametrize("text", ["can someone else use my card abroad", "my card was declined", "what is the agent fee for transfers",
                                  "someone stole my account password and I'd like to reset it",
                                  "can you tell me the phone number to contact customer service?"])
def test_request_human_needs_a_person_and_a_request(vocabulary: Vocabulary, text: str) -> None:
    assert not judge(text, "request_human", vocabulary).keep, text
