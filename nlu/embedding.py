"""Rasa NLU component: the customer's text is embedded once, in Rasa, and carried in the parse data.

Before issue 13 the same text was embedded twice per message: by the sentiment head in Rasa and
again by the FAQ search in the action server. This component computes the all-MiniLM-L6-v2
sentence embedding once and sets `text_embedding` (knowledge/query_vector.py) on the message, so
it is in the parse result, the tracker's `latest_message` and the stored UserUttered event.
nlu/sentiment.py reads it instead of re-embedding, and the action server searches with it when
the knowledge base's encoder is the same model; otherwise (a Chinese knowledge base on
multilingual-e5-small) the action embeds the text itself, as before.

Chinese texts are not embedded here: MiniLM cannot read them, Chinese sentiment is a lexicon
(nlu/sentiment_zh.py) and a Chinese knowledge base searches with E5. Button payloads
("/intent{...}") are not words and are not embedded either.

Registered like the sentiment component: a non-trainable classifier, so it runs only when Rasa
parses a message, never at `rasa train`.

config.yml, before nlu.sentiment.SentimentAnalyzer:
    - name: nlu.embedding.TextEmbedder
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Sequence, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from core.language import detect
from knowledge.models import MINILM, Encoder, message_encoder
from knowledge.query_vector import EMBEDDING, QueryVector


def embeddable(text: str) -> bool:
    """Words MiniLM can read: not empty, not a button payload, not Chinese."""
    return bool(text.strip()) and not text.startswith("/") and detect(text) != "zh"


def embed_texts(texts: Sequence[str], model: Encoder) -> list[Optional[QueryVector]]:
    """MiniLM vectors of the embeddable texts (None for the others), in one batch."""
    chosen = [i for i, t in enumerate(texts) if embeddable(t)]
    out: list[Optional[QueryVector]] = [None] * len(texts)
    if chosen:
        for i, vector in zip(chosen, model.encode([texts[i] for i in chosen])):
            out[i] = QueryVector(MINILM, vector)
    return out


@functools.lru_cache(maxsize=1)
def warm_encoder() -> Encoder:
    """The process's MiniLM for messages (knowledge/models.message_encoder: ONNX Runtime where
    built), loaded and warmed once: Rasa creates the component anew for every message, so creating
    it must cost nothing."""
    model = message_encoder(MINILM)
    model.encode(["warm up"])
    return model


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class TextEmbedder(GraphComponent):
    """Adds `text_embedding` to every message Rasa parses (sentiment and the actions reuse it)."""

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.model = warm_encoder()

    @classmethod
    def create(
        cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> "TextEmbedder":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message, found in zip(messages, embed_texts([m.get("text") or "" for m in messages], self.model)):
            if found is not None:
                message.set(EMBEDDING, found.to_dict(), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to learn: the encoder is shipped, and DIET does not read this vector."""
        return training_data
