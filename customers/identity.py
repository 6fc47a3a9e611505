"""Verified identities from the site that embeds the widget.

The site's server signs the logged-in user's details with the per-site secret it shares with
Tandem (settings.customers.identity_secrets, keyed by widget site key); the widget passes the
payload and signature along; we check them here. Anything unsigned, forged, expired or from an
unknown site is ignored (None), so a customer can never claim another customer's identity by
typing it into the browser console. The recipe for site owners is in docs/customers.md.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Mapping

from core.settings import CustomerSettings

FIELDS = ("user_id", "name", "email", "phone", "tier", "iat", "exp")
MAX_TEXT = 200


@dataclass(frozen=True)
class Identity:
    """Who the site says the customer is, after the signature checked out."""

    site_key: str
    user_id: str
    name: str = ""
    email: str = ""
    phone: str = ""
    tier: str = ""
    issued_at: int = 0
    expires_at: int = 0

    @property
    def channel(self) -> str:
        """The identity namespace: user ids are only unique within one site."""
        return f"site:{self.site_key}"


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (not \\u-escaped): what the site signs, byte for byte."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_identity(secret: str, payload: Mapping[str, Any]) -> str:
    """The signature a site computes (used by tests and by docs/customers.md's Python recipe)."""
    return hmac.new(secret.encode("utf-8"), canonical_json(payload), hashlib.sha256).hexdigest()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if value is None:
        return ""
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return value.strip()
    return None


def verify_identity(
    site_key: str, payload: Any, signature: Any, now: float, *, settings: CustomerSettings
) -> Identity | None:
    """The Identity if `signature` is the site's HMAC of `payload` and it is current; else None."""
    secret = settings.identity_secrets.get(site_key) if isinstance(site_key, str) else None
    if not secret or not isinstance(payload, Mapping) or not isinstance(signature, str):
        return None
    try:
        expected = sign_identity(secret, payload)
    except (TypeError, ValueError):
        return None
    if not hmac.compare_digest(expected, signature.strip().lower()):
        return None
    if set(payload) - set(FIELDS):
        return None  # a field we do not understand may carry meaning we would drop: refuse
    issued, expires = _int(payload.get("iat")), _int(payload.get("exp"))
    if issued is None or expires is None:
        return None
    if now >= expires or issued > now + settings.identity_clock_skew_s or expires - issued > settings.identity_max_lifetime_s:
        return None
    user_id = payload.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_TEXT:
        return None
    texts = {k: _text(payload.get(k)) for k in ("name", "email", "phone", "tier")}
    if any(v is None for v in texts.values()):
        return None
    return Identity(
        site_key=site_key, user_id=user_id.strip(), name=texts["name"] or "", email=(texts["email"] or "").lower(),
        phone=texts["phone"] or "", tier=(texts["tier"] or "").lower(), issued_at=issued, expires_at=expires,
    )
