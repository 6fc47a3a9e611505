"""Rasa NLU component: the conversation intents from word and character n-grams (replaces DIET).

Why not DIET: Rasa's NLU here only tells a handful of conversational acts apart (greet, thank,
affirm, deny, goodbye, bot_challenge, request_human; data/nlu.yml, English and Chinese), and
nlu.conversation.ConversationGate sends every message that says more than such an act to the
knowledge base anyway. For that job a logistic regression on TF-IDF word (1-2) and character
(1-4, within word boundaries: Chinese has no spaces) n-grams does what DIET did (same capture,
same escalations; 1 of 70 English and 3 of 78 Chinese held-out moves fewer recognised), costs
0.8 ms per message instead of 15 (DIET was the largest part of Rasa's parse, issue 13), loads in
milliseconds instead of DIET's 20 s and trains in a second. Measured against DIET in
docs/performance.md section 5.

Outputs what Rasa's intent classifiers output (`intent`, `intent_ranking`), so FallbackClassifier,
the gate, the rules and the escalation policy read it unchanged.

config.yml, first in the pipeline (it reads the raw text; no tokenizer or featurizer needed):
    - name: nlu.ngram_intents.NgramIntentClassifier
      C: 100.0
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

MODEL_FILE = "ngram_intents.joblib"
RANKING_LENGTH = 10
# Words, numbers and each Han character on its own (the same units as nlu.conversation.TOKEN).
WORD_PATTERN = r"(?u)[a-z0-9]+(?:'[a-z]+)?|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"


def build_pipeline(c: float) -> Any:
    """The untrained classifier: word and character n-gram TF-IDF, one logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion([
        ("words", TfidfVectorizer(lowercase=True, token_pattern=WORD_PATTERN, ngram_range=(1, 2), sublinear_tf=True)),
        ("chars", TfidfVectorizer(lowercase=True, analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)),
    ])
    return Pipeline([("features", features), ("classifier", LogisticRegression(C=c, max_iter=2000))])


class FittedScorer:
    """The fitted pipeline's probabilities, computed directly from its vocabularies, idf weights
    and coefficients: sklearn's transform() costs ~2 ms of input checks per call for a one-line
    text, this ~0.1 ms; tests/test_ngram_intents.py checks it equals pipeline.predict_proba."""

    def __init__(self, pipeline: Any) -> None:
        union = pipeline.named_steps["features"]
        classifier = pipeline.named_steps["classifier"]
        self.classes = [str(c) for c in classifier.classes_]
        self._parts = []
        offset = 0
        for _, vectorizer in union.transformer_list:
            self._parts.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_, offset))
            offset += len(vectorizer.vocabulary_)
        self._coef = np.asarray(classifier.coef_, dtype=np.float64)
        self._intercept = np.asarray(classifier.intercept_, dtype=np.float64)
        self._binary = self._coef.shape[0] == 1

    def proba(self, text: str) -> np.ndarray:
        logits = self._intercept.copy()
        known = False
        for analyzer, vocabulary, idf, offset in self._parts:
            counts: Dict[int, int] = {}
            for gram in analyzer(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
                    known = known or bool(gram.strip())  # the padding space of char n-grams says nothing
            if not counts:
                continue
            indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[indices]
            weights /= np.linalg.norm(weights)
            logits += self._coef[:, offset + indices] @ weights
        if not known:  # not one n-gram of the training texts: no intent, rather than the prior's favourite
            return np.full(len(self.classes), 1.0 / len(self.classes))
        if self._binary:
            p = 1.0 / (1.0 + np.exp(-logits[0]))
            return np.array([1.0 - p, p])
        logits -= logits.max()
        e = np.exp(logits)
        return e / e.sum()


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class NgramIntentClassifier(GraphComponent):
    """Intent and ranking of every message; trained at `rasa train` on data/nlu.yml."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"C": 100.0}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, pipeline: Any = None) -> None:
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self._pipeline = pipeline
        self._scorer = FittedScorer(pipeline) if pipeline is not None else None

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "NgramIntentClassifier":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "NgramIntentClassifier":
        import joblib

        try:
            with model_storage.read_from(resource) as directory:
                pipeline = joblib.load(directory / MODEL_FILE)
        except (ValueError, FileNotFoundError):
            logger.warning("NgramIntentClassifier: no trained model in this Rasa model; every message is nlu_fallback")
            pipeline = None
        return cls(config, model_storage, resource, pipeline)

    def train(self, training_data: TrainingData) -> Resource:
        import joblib

        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        if len({m.get(INTENT) for m in examples}) < 2:
            logger.warning("NgramIntentClassifier: fewer than two intents to learn; not trained")
            return self._resource
        pipeline = build_pipeline(float(self._config["C"]))
        pipeline.fit([m.get(TEXT) for m in examples], [m.get(INTENT) for m in examples])
        self._pipeline = pipeline
        self._scorer = FittedScorer(pipeline)
        with self._storage.write_to(self._resource) as directory:
            joblib.dump(pipeline, directory / MODEL_FILE)
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self._scorer is None:
            return messages
        labels = self._scorer.classes
        for message in messages:
            text = str(message.get(TEXT) or "")
            if not text:
                continue
            row = self._scorer.proba(text)
            order = np.argsort(-row)[:RANKING_LENGTH]
            ranking = [{"name": labels[i], "confidence": float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
