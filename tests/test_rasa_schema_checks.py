"""Rasa's process validates action-server responses (and HTTP API events) against constant JSON
schemas; server.rasa_server.check_schemas_once builds each validator once. Same verdicts, same
error messages as jsonschema.validate, for good and bad responses alike."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event

from server.rasa_server import check_schemas_once

ORIGINAL = jsonschema.validate

EVENTS_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "object", "required": ["event"]}}

RESPONSES: list[Any] = [
    {"events": [{"event": "slot", "name": "x", "value": 1, "timestamp": None}], "responses": [{"text": "hi"}]},
    {"events": [], "responses": []},
    {"events": [{"event": "nonsense"}]},
    {"events": "x"},
    {"events": [{"event": "slot"}], "responses": ["not an object"]},
    [],
]


@pytest.fixture
def cached() -> Iterator[None]:
    """check_schemas_once installed for one test; jsonschema's own validate put back after it."""
    check_schemas_once()
    yield
    jsonschema.validate = ORIGINAL


def verdict(validate: Any, instance: Any, schema: Any) -> str:
    try:
        validate(instance, schema)
    except jsonschema.ValidationError as error:
        return f"{error.message} @ {list(error.absolute_path)}"
    return "valid"


@pytest.mark.parametrize("instance", RESPONSES)
def test_same_verdict_as_jsonschema(instance: Any, cached: None) -> None:
    schema = RemoteAction.action_response_format_spec()
    assert jsonschema.validate is not ORIGINAL
    assert verdict(jsonschema.validate, instance, schema) == verdict(ORIGINAL, instance, schema)
    assert verdict(jsonschema.validate, instance, EVENTS_SCHEMA) == verdict(ORIGINAL, instance, EVENTS_SCHEMA)


def test_rasa_rejects_a_bad_action_response_and_accepts_a_good_one(cached: None) -> None:
    check_schemas_once()  # idempotent: not wrapped twice
    assert getattr(jsonschema.validate, "tandem_cached", False)
    action = RemoteAction("action_answer", None)
    assert action._validate_action_result(RESPONSES[0])
    with pytest.raises(jsonschema.ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result(RESPONSES[2])
    assert Event.from_parameters(RESPONSES[0]["events"][0]) is not None


def test_an_invalid_schema_is_still_refused(cached: None) -> None:
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.validate({}, {"type": 12})
