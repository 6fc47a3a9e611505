"""Bulk import and export of FAQ entries as CSV or YAML.

An import is checked completely before anything is written: the result lists every row-level
problem (missing answer, duplicate id, bad encoding, wrong columns, ...) and only an error-free
file is handed to FaqStore.upsert_many, which applies it in one transaction. So an import is
applied whole or not at all.

CSV columns: id, category, question, answer, paraphrases, tags, status. `paraphrases` and
`tags` hold several values separated by "|"; `id` may be left empty (one is made from the
category and question); `status` defaults to published. YAML: a list of mappings with the same
keys, either at the top level or under `faqs:` (the format of data/faq.yml).
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from knowledge.store import Faq, StoreError, validate

COLUMNS = ("id", "category", "question", "answer", "paraphrases", "tags", "status")
REQUIRED_COLUMNS = ("category", "question", "answer")
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 5000
FORMATS = ("csv", "yaml")
# auto: UTF-8 (with or without BOM); a file that is not UTF-8 but is Chinese text in GB18030/GBK
# (what Excel on a Chinese Windows saves) is converted, and the report says so; utf-8: refuse
# anything else; gb18030: the file is GB18030. Issue 16.
ENCODINGS = ("auto", "utf-8", "gb18030")
HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class RowError:
    """One problem; `row` is the 1-based data row (CSV: the header is row 0), None for the file."""

    row: int | None
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class ImportReport:
    entries: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    encoding: str = "utf-8"  # what the file was read as
    notes: list[str] = field(default_factory=list)  # what the editor should check (e.g. a conversion)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": len(self.entries), "errors": [e.to_dict() for e in self.errors[:200]],
                "error_count": len(self.errors), "encoding": self.encoding, "notes": list(self.notes)}


def slug(text: str, limit: int = 60) -> str:
    """A readable id fragment: ascii, lower case, words joined by dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].rstrip("-") or "entry"


def _as_gb18030(data: bytes) -> str | None:
    """The text if `data` is valid GB18030 holding Chinese, else None (Latin-1 bytes rarely are both)."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    return text.lstrip("\ufeff") if HAN.search(text) else None


def _decode(data: bytes, report: ImportReport, encoding: str = "auto") -> str | None:
    if len(data) > MAX_IMPORT_BYTES:
        report.errors.append(RowError(None, f"file too large ({len(data) / 1024 / 1024:.1f} MB; the limit is "
                                            f"{MAX_IMPORT_BYTES // 1024 // 1024} MB): split it into several imports"))
        return None
    if not data.strip():
        report.errors.append(RowError(None, "the file is empty"))
        return None
    if encoding == "gb18030":
        try:
            report.encoding = "gb18030"
            return data.decode("gb18030").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            report.errors.append(RowError(None, f"the file is not GB18030 text: byte 0x{data[exc.start]:02x} on line {line}"))
            return None
    try:
        text = data.decode("utf-8-sig")
        if data.startswith(b"\xef\xbb\xbf"):
            report.encoding = "utf-8-sig"
        return text
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        chinese = _as_gb18030(data)
        if chinese is not None and encoding == "auto":
            report.encoding = "gb18030"
            report.notes.append("the file is not UTF-8: it was read as GB18030 (Chinese Windows/Excel) and converted to UTF-8; "
                                "check the Chinese text in the preview before applying")
            return chinese
        hint = (" It looks like Chinese text in GB18030/GBK (Excel on Chinese Windows): save it as \"CSV UTF-8\", "
                "or import it with encoding=gb18030." if chinese is not None else " (save it as UTF-8 and import again)")
        report.errors.append(RowError(None, f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}{'.' if chinese else ''}{hint}"))
        return None


def _check_rows(rows: Iterable[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
    """Validate each row as the store would, and look for duplicate ids across the file."""
    seen: dict[str, int] = {}
    for number, raw in rows:
        if len(report.entries) + 1 > MAX_IMPORT_ROWS:
            report.errors.append(RowError(number, f"more than {MAX_IMPORT_ROWS} entries: split the file"))
            return
        row = {k: v for k, v in raw.items() if v not in (None, "")}
        if "id" not in row and isinstance(row.get("question"), str) and isinstance(row.get("category"), str):
            row["id"] = f"{slug(row['category'], 30)}-{slug(row['question'])}"
        missing = [k for k in REQUIRED_COLUMNS if not (isinstance(row.get(k), str) and row[k].strip())]
        if missing:
            for key in missing:
                report.errors.append(RowError(number, f"missing {key}", key))
            continue
        try:
            clean = validate(row)
        except StoreError as exc:
            report.errors.append(RowError(number, str(exc)))
            continue
        if clean["id"] in seen:
            report.errors.append(RowError(number, f"duplicate id '{clean['id']}' (also on row {seen[clean['id']]})", "id"))
            continue
        seen[clean["id"]] = number
        report.entries.append(clean)


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...), +cmd|...,
# @SUM(...), and tab/CR variants): CSV injection. Export prefixes such a cell with a quote,
# which spreadsheets show as text; import removes exactly that one quote again, so export ->
# import gives back exactly what was stored (a cell already starting with quotes + a trigger
# gets one more quote, so it round-trips too).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = re.compile(r"^'+[=+\-@\t\r]")


def escape_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) or _ESCAPED.match(value) else value


def unescape_cell(value: str | None) -> str | None:
    return value[1:] if value and _ESCAPED.match(value) else value


def parse_csv(data: bytes, encoding: str = "auto") -> ImportReport:
    report = ImportReport()
    text = _decode(data, report, encoding)
    if text is None:
        return report
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        report.errors.append(RowError(None, f"not a readable CSV file: {exc}"))
        return report
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(repr(h) for h in unknown)}")
        if len(set(header)) != len(header):
            parts.append("a column appears twice")
        report.errors.append(RowError(0, f"wrong columns: {'; '.join(parts)}. Expected: {', '.join(COLUMNS)}"))
        return report
    reader.fieldnames = header

    def rows() -> Iterable[tuple[int, dict[str, Any]]]:
        try:
            for number, row in enumerate(reader, start=1):
                if None in row:
                    report.errors.append(RowError(number, f"{len(row[None])} more value(s) than there are columns"))
                    continue
                if not any((v or "").strip() for v in row.values()):
                    continue  # blank line
                yield number, {key: unescape_cell(value) for key, value in row.items()}
        except csv.Error as exc:
            report.errors.append(RowError(reader.line_num, f"broken CSV: {exc}"))

    _check_rows(rows(), report)
    if not report.entries and not report.errors:
        report.errors.append(RowError(None, "the file has a header but no entries"))
    return report


def parse_yaml(data: bytes, encoding: str = "auto") -> ImportReport:
    report = ImportReport()
    text = _decode(data, report, encoding)
    if text is None:
        return report
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        report.errors.append(RowError(None, f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"))
        return report
    items = loaded.get("faqs") if isinstance(loaded, dict) else loaded
    if not isinstance(items, list):
        report.errors.append(RowError(None, "expected a list of entries (or a mapping with a 'faqs' list)"))
        return report

    def rows() -> Iterable[tuple[int, dict[str, Any]]]:
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                report.errors.append(RowError(number, "each entry must be a mapping of fields"))
                continue
            unknown = [str(k) for k in item if k not in COLUMNS]
            if unknown:
                report.errors.append(RowError(number, f"unknown field(s) {', '.join(unknown)}; expected {', '.join(COLUMNS)}"))
                continue
            bad = [k for k in ("id", "category", "question", "answer", "status") if k in item and item[k] is not None and not isinstance(item[k], str)]
            if bad:
                report.errors.append(RowError(number, f"{', '.join(bad)} must be text", bad[0]))
                continue
            yield number, item

    _check_rows(rows(), report)
    if not report.entries and not report.errors:
        report.errors.append(RowError(None, "the file has no entries"))
    return report


def parse(data: bytes, fmt: str, encoding: str = "auto") -> ImportReport:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
    return parse_csv(data, encoding) if fmt == "csv" else parse_yaml(data, encoding)


def export_csv(entries: Iterable[Faq]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for faq in entries:
        row = faq.content()
        row["paraphrases"] = "|".join(row["paraphrases"])
        row["tags"] = "|".join(row["tags"])
        writer.writerow({key: escape_cell(value) if isinstance(value, str) else value for key, value in row.items()})
    return out.getvalue()


def export_yaml(entries: Iterable[Faq]) -> str:
    return yaml.safe_dump({"faqs": [f.content() for f in entries]}, allow_unicode=True, sort_keys=False, width=100)
