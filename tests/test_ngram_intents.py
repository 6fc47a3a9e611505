"""nlu.ngram_intents.NgramIntentClassifier through Rasa's own component contract: trained on
data/nlu.yml, persisted in a real model storage, loaded back, and the same intents and rankings
come out; it outputs what FallbackClassifier and ConversationGate read."""
from __future__ import annotations

from pathlib import Path

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from core.settings import ROOT
from nlu.ngram_intents import NgramIntentClassifier

TEXTS = ("hello there", "thanks a lot", "yes please", "no thanks", "bye for now", "are you a bot?",
         "I want to talk to a person", "你好", "谢谢", "转人工")
EXPECTED = ("greet", "thank", "affirm", "deny", "goodbye", "bot_challenge", "request_human", "greet", "thank", "request_human")


def _parse(component: NgramIntentClassifier, texts: tuple[str, ...]) -> list[Message]:
    return component.process([Message(data={"text": t}) for t in texts])


def test_trains_persists_and_loads_the_same_classifier(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("ngram_intents")
    context = ExecutionContext(GraphSchema({}), "test")
    config = NgramIntentClassifier.get_default_config()
    trained = NgramIntentClassifier.create(config, storage, resource, context)
    trained.train(load_data(str(ROOT / "data" / "nlu.yml")))

    before = _parse(trained, TEXTS)
    assert [m.get("intent")["name"] for m in before] == list(EXPECTED)
    for message in before:
        ranking = message.get("intent_ranking")
        assert ranking[0] == message.get("intent") and len(ranking) == 7
        assert all(a["confidence"] >= b["confidence"] for a, b in zip(ranking, ranking[1:]))
        assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6
        assert {"intent", "intent_ranking"} <= set(message.as_dict(only_output_properties=True))

    loaded = NgramIntentClassifier.load(config, storage, resource, context)
    after = _parse(loaded, TEXTS)
    assert [m.get("intent_ranking") for m in after] == [m.get("intent_ranking") for m in before]


def test_an_untrained_model_and_an_empty_text_leave_the_message_alone(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    config = NgramIntentClassifier.get_default_config()
    untrained = NgramIntentClassifier.load(config, storage, Resource("never_written"), context)
    [message] = _parse(untrained, ("hello",))
    assert message.get("intent") is None
    trained = NgramIntentClassifier.create(config, storage, Resource("x"), context)
    trained.train(load_data(str(ROOT / "data" / "nlu.yml")))
    [empty] = _parse(trained, ("",))
    assert empty.get("intent") is None


def test_the_fast_path_gives_the_pipelines_own_probabilities(tmp_path: Path) -> None:
    import numpy as np

    from nlu.ngram_intents import FittedScorer

    component = NgramIntentClassifier.create(NgramIntentClassifier.get_default_config(), LocalModelStorage(tmp_path),
                                             Resource("x"), ExecutionContext(GraphSchema({}), "test"))
    component.train(load_data(str(ROOT / "data" / "nlu.yml")))
    pipeline = component._pipeline
    texts = list(TEXTS) + ["where is my parcel", "hi, my card was declined"]
    scorer = FittedScorer(pipeline)
    assert scorer.classes == [str(c) for c in pipeline.classes_]
    direct = np.vstack([scorer.proba(t) for t in texts])
    assert np.allclose(direct, pipeline.predict_proba(texts), atol=1e-9)
    # Nothing the training texts had (the pipeline would give its prior's favourite): no intent.
    for unknown in ("", "\u2603\u2603", "\U0001f600"):
        assert np.allclose(scorer.proba(unknown), 1.0 / len(scorer.classes))
