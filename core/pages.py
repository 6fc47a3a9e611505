"""Serving a staff page (console, editor, reports) and only the files it names.

Every door's page is a fixed HTML file plus a fixed list of its scripts and styles; a name not
on the list (a directory, `../`, anything else) is a clear 404, never a file the page did not
mean to publish. Served with no-cache, so a deploy is seen at the next reload.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sanic.response import HTTPResponse, file

from core.http import ApiError

NO_CACHE = {"Cache-Control": "no-cache"}
SCRIPT, STYLE = "text/javascript; charset=utf-8", "text/css; charset=utf-8"


@dataclass(frozen=True)
class StaffPage:
    folder: Path
    page: str  # the HTML file's name
    files: Mapping[str, str]  # the page's own files: name -> MIME type
    what: str  # "console", "editor", ...: said in the 404

    async def html(self) -> HTTPResponse:
        return await file(self.folder / self.page, mime_type="text/html; charset=utf-8", headers=NO_CACHE)

    async def asset(self, name: str) -> HTTPResponse:
        if name not in self.files:
            raise ApiError(404, f"no {self.what} file '{name}'")
        return await file(self.folder / name, mime_type=self.files[name], headers=NO_CACHE)
