"""Security headers for every response, decided in this one place by what is being served.

- Staff pages (/console, /editor) and the demo page: a strict CSP (own scripts and styles only,
  no framing: `frame-ancestors 'none'` + X-Frame-Options DENY against click-jacking).
- JSON APIs: `default-src 'none'`, no framing, `Cache-Control: no-store` (they carry tokens).
- The widget's own files (/widget/*.js, *.css) are loaded by customers' sites on other origins:
  they get nosniff and `Cross-Origin-Resource-Policy: cross-origin`, and no frame or CSP rule
  that would stop a host page from using them (the host page's own CSP is the host's business;
  docs/security.md says what it must allow).
Everything gets `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
"""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

PAGE_CSP = ("default-src 'self'; script-src 'self'{scripts}; style-src 'self'{styles}; img-src 'self' data: blob:; "
            "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
NO_FRAMES = {"X-Frame-Options": "DENY"}


def inline_hashes(html: Path) -> tuple[str, str]:
    """CSP hash sources for the inline <script> and <style> blocks of a page we ship."""
    text = html.read_text(encoding="utf-8")

    def sources(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S)
        return "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    return sources("script"), sources("style")


def headers_for(path: str, content_type: str, demo_page: tuple[str, str]) -> dict[str, str]:
    if path.startswith("/widget/") and not path.startswith("/widget/session"):
        return {**COMMON, "Cross-Origin-Resource-Policy": "cross-origin"}
    if content_type.startswith("text/html"):
        scripts, styles = demo_page if path == "/demo" else ("", "")
        return {**COMMON, **NO_FRAMES, "Content-Security-Policy": PAGE_CSP.format(scripts=scripts, styles=styles)}
    if path.startswith(("/console/", "/editor/")):  # the staff pages' own scripts and styles
        return {**COMMON, **NO_FRAMES}
    extra = {"Cache-Control": "no-store"} if path.startswith("/api/") else {}
    return {**COMMON, **NO_FRAMES, "Content-Security-Policy": API_CSP, **extra}


def install_security_headers(app: Any, demo_html: Path) -> None:
    demo_page = inline_hashes(demo_html)

    @app.on_response
    async def _security_headers(request: Request, response: HTTPResponse) -> None:
        content_type = response.content_type or response.headers.get("content-type", "") or ""
        for name, value in headers_for(request.path, content_type, demo_page).items():
            if name == "Cache-Control" and "cache-control" in response.headers:
                continue
            response.headers[name] = value
