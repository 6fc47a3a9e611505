"""The action server's one KnowledgeBase, opened when the action server imports the actions.

rasa-sdk instantiates Action classes itself, so the knowledge base cannot be passed in; this
module is the single, explicit place that builds it from the settings. The tables exist already:
`./tandem up` (server/cli.prepare) creates them before it starts this process.
"""
from __future__ import annotations

import functools
import logging

from core.db import sync_engine

from core.persona import PersonaSource
from core.settings import Business, Settings, load_settings
from knowledge.base import AdaptPolicy, KnowledgeBase
from knowledge.store import FaqStore

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


@functools.lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    """Open (and if needed rebuild) the index, and load the embedding model, once."""
    current = settings()
    kb = KnowledgeBase(FaqStore(sync_engine(current)), current.index_dir, language=current.knowledge_language,
                       head=current.faq_head, index_kind=current.index_kind, adapt=AdaptPolicy.from_settings(current, train=False))
    kb.open()
    kb.search("warm up")  # loads the model now, not on the first customer's message
    log.info("knowledge base ready: %d entries", len(kb.index))
    return kb


@functools.lru_cache(maxsize=1)
def persona_source() -> PersonaSource:
    """tandem.yml's business texts plus editors' overrides, re-checked at most once a second."""
    current = settings()
    return PersonaSource(sync_engine(current), current.business)


def persona() -> Business:
    return persona_source().current()
