"""Rasa NLU component: every parsed message carries `sentiment` (label, score, cues, english).

Registered with Rasa 3.6's DefaultV1Recipe as a (non-trainable) classifier, so it runs in the
prediction graph only: `rasa train` does not embed anything for it, and the parse result, the
tracker's `latest_message` and every stored UserUttered event hold the sentiment, which is how
the actions see the trend over a whole conversation. The model (nlu/sentiment_head.npz + the
offline MiniLM) is shipped, never downloaded; see nlu/scorer.py.

config.yml:
    - name: nlu.sentiment.SentimentAnalyzer
      head: nlu/sentiment_head.npz   # optional; missing file -> VADER + support cues
      zh_head: nlu/sentiment_head_e5.npz   # optional, off by default: Chinese is scored by cues + lexicon
                                           # (the blend measured worse on the Chinese labels, docs/evaluation.md)
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

import numpy as np

from knowledge.models import MINILM
from knowledge.query_vector import EMBEDDING, QueryVector
from nlu.scorer import HEAD_FILE, SentimentScorer

log = logging.getLogger(__name__)
SENTIMENT = "sentiment"
ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=4)
def shared_scorer(head: str, zh_head: str = "") -> SentimentScorer:
    """One scorer (and one embedding model) per process and head file.

    Rasa builds a non-eager graph component anew for every message it parses, so the component
    must be cheap to create: the model is loaded once here, and warmed up so the first customer
    does not wait for it.
    """
    scorer = SentimentScorer(head_path=Path(head) if head else None, zh_head_path=Path(zh_head) if zh_head else None)
    if scorer.head is None:
        log.warning("sentiment head %s not found: scoring with VADER + support cues only", head or "(none)")
    scorer.score("warm up")
    # E5 (for the Chinese head) is not warmed up: it loads on the first Chinese message (~0.5 s, ~100 MB),
    # so an English-only business never pays for it.
    return scorer


def _path(value: object) -> str:
    """A configured file, relative to the project root unless absolute; "" when not configured."""
    if not value:
        return ""
    path = Path(str(value))
    return str(path if path.is_absolute() else ROOT / path)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SentimentAnalyzer(GraphComponent):
    """Adds `sentiment` to the output of every message Rasa parses."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"head": str(HEAD_FILE.relative_to(ROOT)), "zh_head": ""}  # opt-in: nlu/sentiment_head_e5.npz, see the module docstring

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.scorer = shared_scorer(_path(config.get("head")), _path(config.get("zh_head")))

    @classmethod
    def create(
        cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> "SentimentAnalyzer":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        texts = [m.get("text") or "" for m in messages]
        scorable = [i for i, t in enumerate(texts) if t.strip() and not t.startswith("/")]  # "/intent" payloads are buttons, not words
        # nlu.embedding.TextEmbedder ran before: score with its vectors instead of embedding again.
        carried = [QueryVector.from_parse({EMBEDDING: messages[i].get(EMBEDDING)}) for i in scorable]
        embeddings = (np.stack([c.vector for c in carried]) if scorable and all(c is not None and c.encoder == MINILM for c in carried)
                      else None)
        for i, result in zip(scorable, self.scorer.score_many([texts[i] for i in scorable], embeddings)):
            messages[i].set(SENTIMENT, result.to_dict(), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to learn from the NLU data: the head is trained on support tweets (benchmarks/)."""
        return training_data
