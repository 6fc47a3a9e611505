"""Customer records, verified site identities, channel links and merges, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from conversations.store import ConversationStore
from core.db import async_engine
from server.schema import create_schema
from core.settings import CustomerSettings, load_settings
from customers.identity import canonical_json, sign_identity, verify_identity
from customers.store import CustomerError, CustomerStore, UnknownCustomer
from handoff.accounts import Accounts
from handoff.history import CaseHistory
from handoff.queue import CaseQueue
from tests.conftest import postgres_url, stack_settings

SECRETS = CustomerSettings(identity_secrets={"shop": "s3cret-shop", "other": "s3cret-other"})
NOW = 1_800_000_000


def signed(payload: dict[str, Any], secret: str = "s3cret-shop") -> tuple[dict[str, Any], str]:
    return payload, sign_identity(secret, payload)


def good(**changes: Any) -> dict[str, Any]:
    return {"user_id": "u-42", "name": "Zoë Müller", "email": "Zoe@Example.org", "tier": "Gold", "iat": NOW - 10, "exp": NOW + 600, **changes}


# -- verified identity: pure -----------------------------------------------------------------
def test_a_signed_identity_is_accepted() -> None:
    payload, signature = signed(good())
    identity = verify_identity("shop", payload, signature, NOW, settings=SECRETS)
    assert identity is not None
    assert (identity.user_id, identity.name, identity.email, identity.tier) == ("u-42", "Zoë Müller", "zoe@example.org", "gold")
    assert identity.channel == "site:shop"


def test_canonical_json_is_what_node_produces() -> None:
    """Sorted keys, no spaces, raw UTF-8: the same bytes as docs/customers.md's Node recipe."""
    assert canonical_json({"name": "Zoë", "exp": 2, "iat": 1}) == '{"exp":2,"iat":1,"name":"Zoë"}'.encode()


@pytest.mark.parametrize("case", ["forged", "tampered", "other_site_secret", "unknown_site", "expired", "future", "too_long",
                                  "unsigned", "no_expiry", "extra_field", "bad_user", "not_a_mapping", "float_times"])
def test_bad_identities_are_ignored(case: str) -> None:
    payload, signature = signed(good())
    site = "shop"
    if case == "forged":
        signature = "0" * 64
    elif case == "tampered":
        payload = {**payload, "tier": "platinum"}
    elif case == "other_site_secret":
        payload, signature = signed(good(), "s3cret-other")
    elif case == "unknown_site":
        site = "nowhere"
    elif case == "expired":
        payload, signature = signed(good(exp=NOW))
    elif case == "future":
        payload, signature = signed(good(iat=NOW + 3600, exp=NOW + 4000))
    elif case == "too_long":
        payload, signature = signed(good(exp=NOW + 10 * 86400))
    elif case == "unsigned":
        signature = None
    elif case == "no_expiry":
        payload, signature = signed({k: v for k, v in good().items() if k != "exp"})
    elif case == "extra_field":
        payload, signature = signed(good(role="admin"))
    elif case == "bad_user":
        payload, signature = signed(good(user_id=""))
    elif case == "not_a_mapping":
        payload = ["u-42"]
    elif case == "float_times":
        payload, signature = signed(good(exp=NOW + 600.5))
    assert verify_identity(site, payload, signature, NOW, settings=SECRETS) is None
    # ... while the same check accepts the genuine one (the test can tell them apart)
    assert verify_identity("shop", *signed(good()), NOW, settings=SECRETS) is not None


def test_identity_secrets_come_from_tandem_yml(tmp_path: Path) -> None:
    config = tmp_path / "tandem.yml"
    config.write_text("customers:\n  identity_secrets:\n    shop: from-yaml\n  retention_days: 30\n")
    settings = load_settings({"TANDEM_CONFIG": str(config)})
    assert settings.customers.identity_secrets == {"shop": "from-yaml"} and settings.customers.retention_days == 30
    with pytest.raises(ValueError):
        load_settings({"TANDEM_CONFIG": str(config)}, customers={"identity_secret": {}})


# -- the store ------------------------------------------------------------------------------
@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    overrides = {"database_url": postgres_url("tandem_test_customers")} if request.param == "postgresql" else {}
    settings = stack_settings(tmp_path, **overrides)
    await asyncio.to_thread(create_schema, settings)
    engine = async_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_verified_identity_creates_then_updates_one_customer(db: Any) -> None:
    store = CustomerStore(db)
    first = verify_identity("shop", *signed(good()), NOW, settings=SECRETS)
    assert first is not None
    customer = await store.from_identity(first)
    again = await store.from_identity(verify_identity("shop", *signed(good(tier="platinum", name="Zoë M.")), NOW, settings=SECRETS))
    assert again.id == customer.id
    assert (again.tier, again.name, again.email) == ("platinum", "Zoë M.", "zoe@example.org")
    assert again.identities == [{"channel": "site:shop", "external_id": "u-42", "verified": True}]
    # the same user id on another site is another person
    other = await store.from_identity(verify_identity("other", *signed(good(), "s3cret-other"), NOW, settings=SECRETS))
    assert other.id != customer.id


@pytest.mark.asyncio
async def test_telegram_user_is_one_customer_even_when_linked_concurrently(db: Any) -> None:
    store = CustomerStore(db)
    found = await asyncio.gather(*(store.get_or_create_by_identity("telegram", "555001", "Tom") for _ in range(6)))
    assert len({c.id for c in found}) == 1
    other = await store.create(name="Someone")
    with pytest.raises(CustomerError):
        await store.add_identity(other.id, "telegram", "555001")  # unique per channel
    await store.add_identity(found[0].id, "telegram", "555001")  # idempotent for its owner


@pytest.mark.asyncio
async def test_merge_moves_identities_conversations_and_cases(db: Any) -> None:
    store, conversations, queue = CustomerStore(db), ConversationStore(db), CaseQueue(db)
    agent = await Accounts(db, 8).create("ada", "pw-ada-123", "agent", "Ada")
    web = await store.create(name="Zoe", email="zoe@example.org", notes="VIP since 2020")
    telegram = await store.get_or_create_by_identity("telegram", "987", "zoe_tg")
    await store.update(telegram.id, phone="+49301234567", tier="gold", notes="prefers Telegram")
    c1 = await conversations.create("widget")
    c2 = await conversations.create("telegram", external_id="987")
    await store.link_conversation(web.id, c1.id, "identity")
    await store.link_conversation(telegram.id, c2.id, "telegram")
    old = await queue.open_case(c2.id, "telegram", "complaint")
    await queue.claim(old.id, agent.id)
    await queue.close(old.id, agent.id, "refunded")
    await queue.open_case(c1.id, "widget", "customer_request")

    merged = await store.merge(web.id, telegram.id)
    assert (merged.id, merged.name, merged.email, merged.phone, merged.tier) == (web.id, "Zoe", "zoe@example.org", "+49301234567", "gold")
    assert merged.notes == "VIP since 2020\nprefers Telegram"
    assert merged.identities == [{"channel": "telegram", "external_id": "987", "verified": False}]
    assert set(await store.conversations_of(web.id)) == {c1.id, c2.id}
    history = await CaseHistory(db).of_conversations(await store.conversations_of(web.id))
    assert [(c.conversation_id, c.status, c.resolution) for c in history][-1] == (c2.id, "closed", "refunded")
    assert {c.conversation_id for c in history} == {c1.id, c2.id}
    # the absorbed record resolves to the kept one; new Telegram messages find the merged customer
    assert (await store.get(telegram.id)).id == web.id
    assert (await store.get_or_create_by_identity("telegram", "987")).id == web.id
    assert (await store.customer_of(c2.id)).id == web.id
    with pytest.raises(CustomerError):
        await store.merge(web.id, telegram.id)  # already one
    with pytest.raises(UnknownCustomer):
        await store.get(99999)
    with pytest.raises(CustomerError):
        await store.update(web.id, tier=123)  # type: ignore[arg-type]


def test_nested_settings_from_the_environment_and_still_hashable() -> None:
    settings = load_settings({"TANDEM_MAIL": '{"host": "smtp.example.org", "port": "465", "security": "ssl"}',
                              "TANDEM_REASSIGN": '{"team_wait_s": {"complaints": "30"}}'},
                             customers={"identity_secrets": {"shop": "x"}})
    assert (settings.mail.host, settings.mail.port, settings.mail.security) == ("smtp.example.org", 465, "ssl")
    assert settings.reassign.team_wait_s == {"complaints": 30.0} and settings.reassign.wait_s == 180.0
    assert isinstance(hash(settings), int)  # frozen settings stay usable as cache keys
    with pytest.raises(ValueError):
        load_settings({"TANDEM_MAIL": '{"hots": "typo"}'})


@pytest.mark.asyncio
async def test_linking_hooks_put_the_tier_where_routing_reads_it(db: Any) -> None:
    from customers.linking import link_site_identity, link_telegram
    from handoff.routing import RoutingRules

    store, conversations = CustomerStore(db), ConversationStore(db)
    web = await conversations.create("widget")
    payload, signature = signed(good(tier="platinum"))
    assert await link_site_identity(store, conversations, SECRETS, web.id, "shop", {"payload": payload, "signature": "f" * 64}, NOW) is None
    assert await link_site_identity(store, conversations, SECRETS, web.id, "shop", "not a dict", NOW) is None
    assert (await conversations.get(web.id)).profile == {}  # forged: nothing changed
    customer = await link_site_identity(store, conversations, SECRETS, web.id, "shop", {"payload": payload, "signature": signature}, NOW)
    assert customer is not None
    profile = (await conversations.get(web.id)).profile
    assert profile == {"customer_id": customer.id, "tier": "platinum"}
    assert RoutingRules(load_settings({})).classify("customer_request", {}, profile).tier == "platinum"

    chat = await conversations.get_or_create_external("telegram", "4242", "tom")
    tom = await link_telegram(store, conversations, chat.id, 4242, "Tom")
    again = await link_telegram(store, conversations, (await conversations.create("telegram", external_id="other-chat")).id, 4242)
    assert again.id == tom.id and set(await store.conversations_of(tom.id)) == {chat.id, (await conversations.find_external("telegram", "other-chat")).id}


@pytest.mark.asyncio
async def test_opposite_merges_at_once_leave_one_live_record(db: Any) -> None:
    store = CustomerStore(db)
    for _ in range(3):
        a, b = await store.create(name="A", email="a@example.org"), await store.create(name="B", phone="+4930111222")
        results = await asyncio.gather(store.merge(a.id, b.id), store.merge(b.id, a.id), return_exceptions=True)
        winners = [r for r in results if not isinstance(r, BaseException)]
        assert winners, results
        for r in results:
            if isinstance(r, BaseException):
                assert isinstance(r, CustomerError), repr(r)  # a clear 409, never a database error
        live = {(await store.get(a.id)).id, (await store.get(b.id)).id}
        assert len(live) == 1
        merged = await store.get(live.pop())
        assert (merged.email, merged.phone) == ("a@example.org", "+4930111222")
