"""Bulk import/export: validation with row-level errors, all-or-nothing, and a real public FAQ.

The real FAQ is the lsof FAQ ("Frequently Asked Questions about lsof", Vic Abell), which Debian
ships at /usr/share/doc/lsof/00FAQ.gz: several hundred real questions and answers. It is the
only real FAQ corpus of that size on this machine (no internet); it is about a Unix tool, not a
shop, which is fine for testing import.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from core.db import metadata
from editor import importing
from knowledge.store import FaqStore

LSOF_FAQ = Path("/usr/share/doc/lsof/00FAQ.gz")
HEADER = "id,category,question,answer,paraphrases,tags,status\n"


@pytest.fixture()
def store(tmp_path: Path) -> FaqStore:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True)
    metadata.create_all(engine, tables=[metadata.tables["faqs"], metadata.tables["faq_versions"]])
    return FaqStore(engine)


def lsof_faq_entries() -> list[dict[str, str]]:
    """Parse the lsof FAQ: numbered headings ("1.2.1<TAB>Are there mirror sites?"), answers below.

    The table of contents repeats every heading; the body starts at the second "1.0" heading.
    """
    lines = gzip.decompress(LSOF_FAQ.read_bytes()).decode("latin-1").splitlines()
    heading = re.compile(r"^(\d+(?:\.\d+)+)\s+(\S.*)$")
    starts = [i for i, line in enumerate(lines) if re.match(r"^1\.0\s", line)]
    body = lines[starts[1]:]
    entries: list[dict[str, str]] = []
    section, number, question, answer, in_question = "general", "", "", [], False

    def flush() -> None:
        text = "\n".join(answer).strip()
        if number and question.endswith("?") and text:
            entries.append({"id": f"lsof-{number.replace('.', '-')}", "category": section, "question": question,
                            "answer": re.sub(r"\n{3,}", "\n\n", text)[:9000]})

    for line in body:
        match = heading.match(line)
        if match:
            flush()
            number, question, answer, in_question = match.group(1), match.group(2).strip(), [], True
            if number.endswith(".0"):
                section = importing.slug(question, 40)
            continue
        if in_question and line.strip() and not question.endswith("?"):
            question = f"{question} {line.strip()}"  # a heading continued on the next line
            continue
        in_question = False
        answer.append(line.strip())
    flush()
    return entries


def to_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=importing.COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


# -- validation -------------------------------------------------------------------------------
def test_bad_rows_are_reported_with_row_numbers_and_nothing_else_is_accepted() -> None:
    data = (HEADER
            + "a-1,orders,Where is my order?,On its way.,,,\n"
            + "a-2,orders,Missing answer?,,,,\n"
            + "a-1,orders,Duplicate id?,Yes.,,,\n"
            + "a 4,orders,Id with a space?,Yes.,,,\n"
            + "a-5,orders,Bad status?,Yes.,,,live\n"
            + ",,,Yes.,,,\n"
            + "a-7,orders,Too many values?,Yes.,,,draft,extra\n").encode()
    report = importing.parse_csv(data)
    assert not report.ok
    errors = {(e.row, e.message) for e in report.errors}
    assert (2, "missing answer") in errors
    assert (3, "duplicate id 'a-1' (also on row 1)") in errors
    assert any(row == 4 and "without spaces" in message for row, message in errors)
    assert any(row == 5 and "status" in message for row, message in errors)
    assert (6, "missing category") in errors and (6, "missing question") in errors  # and no id made
    assert (7, "1 more value(s) than there are columns") in errors
    assert [e.row for e in report.errors] == sorted(e.row for e in report.errors)


@pytest.mark.parametrize("header, expected", [
    ("question,answer\n", "missing column(s) category"),
    ("id,category,question,answer,colour\n", "unknown column(s) 'colour'"),
    ("id,category,question,answer,answer\n", "a column appears twice"),
])
def test_wrong_columns(header: str, expected: str) -> None:
    report = importing.parse_csv((header + "x,y,z,w,v\n").encode())
    assert len(report.errors) == 1 and report.errors[0].row == 0
    assert expected in report.errors[0].message and "Expected: id, category" in report.errors[0].message


def test_non_utf8_file_is_refused_with_the_line() -> None:
    data = (HEADER + "a-1,orders,Where?,Here.,,,\n" + "a-2,orders,Caf\xe9?,Yes.,,,\n").encode("latin-1")
    report = importing.parse_csv(data)
    assert not report.entries or not report.ok
    assert report.errors[0].row is None and "not UTF-8" in report.errors[0].message and "line 3" in report.errors[0].message
    assert importing.parse_csv("\ufeff".encode() + (HEADER + "a-1,orders,Café?,Oui.,,,\n").encode()).ok  # BOM is fine


def test_ten_megabyte_file_is_refused_without_parsing(store: FaqStore) -> None:
    row = "big-{n},bulk,Question number {n} about a large import?,An answer that is long enough to count. " * 1
    lines = [HEADER] + [row.format(n=n) + ",,,\n" for n in range(200_000)]
    data = "".join(lines).encode()
    assert len(data) > 10 * 1024 * 1024
    report = importing.parse_csv(data)
    assert not report.ok and "too large" in report.errors[0].message
    assert store.count() == 0


def test_empty_and_header_only_files() -> None:
    assert "empty" in importing.parse_csv(b"  \n").errors[0].message
    assert "no entries" in importing.parse_csv(HEADER.encode()).errors[0].message


def test_yaml_errors_and_formats() -> None:
    assert "not valid YAML at line" in importing.parse_yaml(b"faqs:\n  - id: [unclosed\n").errors[0].message
    assert "expected a list" in importing.parse_yaml(b"hello: world\n").errors[0].message
    report = importing.parse_yaml(yaml.safe_dump([
        {"id": "y-1", "category": "c", "question": "Q?", "answer": "A."},
        {"id": "y-2", "category": "c", "question": "Q2?", "answer": "A.", "colour": "red"},
        "just a string",
        {"id": "y-4", "category": "c", "question": 42, "answer": "A."},
    ]).encode())
    messages = [(e.row, e.message) for e in report.errors]
    assert (2, "unknown field(s) colour; expected id, category, question, answer, paraphrases, tags, status") in messages
    assert (3, "each entry must be a mapping of fields") in messages
    assert any(row == 4 and "must be text" in m for row, m in messages)
    with pytest.raises(ValueError):
        importing.parse(b"x", "xml")


def test_id_is_made_when_missing() -> None:
    report = importing.parse_csv(b"category,question,answer\nShipping,How fast is express?,Next day.\n")
    assert report.ok and report.entries[0]["id"] == "shipping-how-fast-is-express"


# -- all or nothing, and round trips ----------------------------------------------------------
def test_import_is_all_or_nothing_in_the_store(store: FaqStore) -> None:
    store.create({"id": "keep", "category": "c", "question": "Keep me?", "answer": "Kept."}, author="t")
    good = importing.parse_csv((HEADER + "n-1,c,New one?,Yes.,,,\nkeep,c,Keep me?,Changed.,,,\n").encode())
    assert good.ok
    # A broken entry that slipped past validation still rolls back the whole transaction.
    with pytest.raises(Exception):
        store.upsert_many([*good.entries, {"id": "n-3", "category": "c", "question": "q"}], author="t")
    assert store.count() == 1 and store.get("keep").answer == "Kept."
    assert store.upsert_many(good.entries, author="importer") == 2
    assert store.get("keep").answer == "Changed." and store.get("keep").version == 2
    assert store.history("n-1")[0]["author"] == "importer"


def test_real_public_faq_imports_and_round_trips(store: FaqStore) -> None:
    if not LSOF_FAQ.exists():
        pytest.skip("the lsof FAQ is not installed (Debian package lsof)")
    entries = lsof_faq_entries()
    assert len(entries) >= 250, len(entries)
    assert any(e["question"] == "Where do I get lsof?" for e in entries)
    report = importing.parse_csv(to_csv(entries))
    assert report.ok, [e.to_dict() for e in report.errors[:5]]
    assert store.upsert_many(report.entries, author="import") == len(entries)
    assert store.count() == len(entries)
    mirror = store.get("lsof-1-2-1")
    assert mirror.question == "Are there mirror sites?" and "ftp" in mirror.answer
    assert len(store.categories()) >= 10

    exported_csv = importing.export_csv(store.list())
    exported_yaml = importing.export_yaml(store.list())
    for again in (importing.parse_csv(exported_csv.encode()), importing.parse_yaml(exported_yaml.encode())):
        assert again.ok
        assert {e["id"]: e for e in again.entries} == {f.id: f.content() for f in store.list()}
    revision = store.revision()
    store.upsert_many(importing.parse_yaml(exported_yaml.encode()).entries, author="import")
    assert store.revision() > revision  # a re-import is a new version of each entry, history kept
    assert [v["version"] for v in store.history("lsof-1-2-1")] == [2, 1]
