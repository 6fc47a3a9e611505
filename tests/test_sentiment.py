"""The sentiment signal: support cues, the shipped head, the lexicon fallback, the Rasa component."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nlu.cues import find_cues
from nlu.scorer import HEAD_FILE, SentimentScorer, lexicon_sentiment

AIRLINE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "airline-sentiment" / "tweets.csv"


@pytest.fixture(scope="module")
def scorer() -> SentimentScorer:
    return SentimentScorer()


def test_cues_name_what_they_saw() -> None:
    cues = find_cues("WHERE IS MY PARCEL?? three weeks and nothing, this is useless!!!")
    assert cues.shouting and cues.exclamations == 3
    assert "useless" in cues.frustration
    assert set(cues.names()) == {"shouting", "exclamations", "frustration_phrase"}
    assert find_cues("what the f*** is going on, this is crap").profanity == 2
    calm = find_cues("Hi, could you tell me when my order ships? I ordered on Monday.")
    assert calm.names() == [] and calm.english


def test_other_languages_are_marked_not_guessed(scorer: SentimentScorer) -> None:
    for text in ("Wo ist meine Bestellung? Ich warte seit zwei Wochen", "Où est mon colis, je l'attends depuis des semaines"):
        result = scorer.score(text)
        assert result.method == "unsupported_language" and not result.cues.english
        assert result.label == "neutral" and result.score == 0.0
        assert result.to_dict()["supported"] is False
    # Chinese is scored since issue 16 (nlu/sentiment_zh.py): a calm question stays neutral.
    chinese = scorer.score("我的包裹在哪里")
    assert chinese.method == "lexicon_zh" and chinese.label == "neutral" and chinese.to_dict()["supported"] is True


def test_the_shipped_head_is_small_and_used(scorer: SentimentScorer) -> None:
    assert HEAD_FILE.exists() and HEAD_FILE.stat().st_size < 50_000
    assert scorer.method == "head"


def test_angry_calm_and_happy_customers(scorer: SentimentScorer) -> None:
    angry = scorer.score("This is absolutely ridiculous, I've asked three times and you keep giving me the same useless answer")
    calm = scorer.score("Hi, how can I track my order please?")
    happy = scorer.score("thanks, that sorted it, you've been really helpful")
    assert angry.label == "negative" and angry.score < -0.7
    assert calm.label == "neutral" and abs(calm.score) < 0.4
    assert happy.label == "positive" and happy.score > 0.5
    assert angry.to_dict()["cues"] == ["frustration_phrase"]


def test_lexicon_method_when_the_head_is_missing(tmp_path: Path) -> None:
    scorer = SentimentScorer(head_path=tmp_path / "missing.npz")
    assert scorer.method == "lexicon"
    assert scorer.score("this is useless, worst service ever").label == "negative"
    # VADER alone calls this neutral; the support cues know better.
    assert lexicon_sentiment("third time I ask where my refund is").score < -0.05


@pytest.mark.skipif(not AIRLINE.exists(), reason="shared airline dataset not present")
def test_negative_recall_on_real_support_tweets(scorer: SentimentScorer) -> None:
    """A small sample of real tweets (the full measurement is benchmarks/sentiment_eval.py)."""
    from benchmarks.sentiment_eval import clean

    with AIRLINE.open(encoding="utf-8") as f:
        rows = [r for i, r in enumerate(csv.DictReader(f)) if i % 50 == 7][:250]
    results = scorer.score_many([clean(r["text"]) for r in rows])
    negatives = [res for res, r in zip(results, rows) if r["airline_sentiment"] == "negative"]
    recall = sum(res.label == "negative" for res in negatives) / len(negatives)
    baseline = sum(lexicon_sentiment(clean(r["text"])).label == "negative" for r in rows if r["airline_sentiment"] == "negative") / len(negatives)
    assert recall >= 0.7 and recall > baseline


def test_rasa_component_adds_sentiment_to_the_parse_output() -> None:
    from rasa.shared.nlu.training_data.message import Message

    from nlu.sentiment import SENTIMENT, SentimentAnalyzer

    component = SentimentAnalyzer({**SentimentAnalyzer.get_default_config()})
    messages = [Message(data={"text": "this is useless!!!"}), Message(data={"text": '/faq{"faq_id": "orders-track-order"}'})]
    component.process(messages)
    assert messages[0].get(SENTIMENT)["label"] == "negative"
    assert SENTIMENT in messages[0].as_dict(only_output_properties=True)
    assert messages[1].get(SENTIMENT) is None  # a button payload has no mood
