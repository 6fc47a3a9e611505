"""The signing recipes of docs/customers.md, run as written (Python here, JavaScript in Node),
must produce identities Tandem's verify_identity accepts; a wrong secret must not."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from typing import Any

import pytest

from core.settings import ROOT, CustomerSettings
from customers.identity import verify_identity

DOC = (ROOT / "docs" / "customers.md").read_text(encoding="utf-8")
SETTINGS = CustomerSettings(identity_secrets={"shop": "s3cret-ßhop"})


def block(language: str) -> str:
    found = re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)
    assert len(found) == 1, f"expected one {language} block in docs/customers.md"
    return found[0]


def test_python_recipe() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(block("python"), "docs/customers.md", "exec"), namespace)
    signed = namespace["sign_identity"]("s3cret-ßhop", "u-7", name="Zoë Müller", email="zoe@example.org", tier="gold")
    identity = verify_identity("shop", signed["payload"], signed["signature"], time.time(), settings=SETTINGS)
    assert identity is not None and (identity.user_id, identity.name, identity.tier) == ("u-7", "Zoë Müller", "gold")
    forged = namespace["sign_identity"]("wrong", "u-7")
    assert verify_identity("shop", forged["payload"], forged["signature"], time.time(), settings=SETTINGS) is None


def test_node_recipe() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (apt-get install nodejs)")
    script = block("js") + '\nconsole.log(JSON.stringify(signIdentity("s3cret-ßhop", {id: 42, name: "Zoë 李", email: "z@example.org", tier: "vip"})));\n'
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    signed = json.loads(out)
    identity = verify_identity("shop", signed["payload"], signed["signature"], time.time(), settings=SETTINGS)
    assert identity is not None and (identity.user_id, identity.name, identity.tier) == ("42", "Zoë 李", "vip")
    tampered = {**signed["payload"], "tier": "platinum"}
    assert verify_identity("shop", tampered, signed["signature"], time.time(), settings=SETTINGS) is None
