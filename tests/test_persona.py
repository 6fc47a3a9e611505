"""The business's identity in settings (core/settings.Business) and editors' overrides (core/persona.py)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.db import sync_engine

from server.schema import create_schema
from core.persona import PersonaError, PersonaSource, validate
from core.settings import Business, load_settings


def test_business_comes_from_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "tandem.yml"
    config.write_text("business:\n  name: Maple Clinic\n  covers: appointments and prescriptions\n  greeting: 'Hello from {name}: {covers}.'\n")
    settings = load_settings(env={"TANDEM_CONFIG": str(config)})
    assert settings.business.name == "Maple Clinic"
    assert settings.business.text("greeting") == "Hello from Maple Clinic: appointments and prescriptions."
    assert "Maple Clinic" in settings.business.text("back_to_bot")  # defaults use {name}, never a shop
    with pytest.raises(AttributeError):
        settings.business.name = "x"  # type: ignore[misc]  # frozen


def test_unknown_business_keys_and_child_process_env(tmp_path: Path) -> None:
    config = tmp_path / "tandem.yml"
    config.write_text("business:\n  slogan: hi\n")
    with pytest.raises(ValueError, match="slogan"):
        load_settings(env={"TANDEM_CONFIG": str(config)})
    env = {"TANDEM_CONFIG": str(tmp_path / "none.yml"), "TANDEM_BUSINESS": '{"name": "Page Turners Library"}'}
    assert load_settings(env=env).business.name == "Page Turners Library"


@pytest.mark.parametrize("bad", [{}, [], {"slogan": "x"}, {"greeting": ""}, {"greeting": 5}, {"greeting": "Hi {customer}"},
                                 {"name": "{covers}"}, {"refusal": "x" * 1001}])
def test_invalid_overrides_are_refused(bad: object) -> None:
    with pytest.raises(PersonaError):
        validate(bad)


def test_overrides_reach_every_reader_and_reset(tmp_path: Path) -> None:
    settings = load_settings(env={"TANDEM_CONFIG": str(tmp_path / "none.yml")}, var_dir=tmp_path)
    create_schema(settings)
    engine = sync_engine(settings)
    defaults = Business(name="Maple Clinic")
    writer, reader = PersonaSource(engine, defaults), PersonaSource(engine, defaults, refresh_interval=0.2)
    assert reader.current().text("greeting") == defaults.text("greeting")
    writer.save({"greeting": "Welcome to {name}!"}, by="editor")
    deadline = time.monotonic() + 2
    while reader.current().greeting != "Welcome to {name}!" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.current().text("greeting") == "Welcome to Maple Clinic!"
    writer.save({"greeting": None})
    time.sleep(0.25)
    assert reader.current().greeting == defaults.greeting
    engine.dispose()
