"""The FAQ store: entries, their versions and a global revision counter, in SQL.

Every change writes a version row; its auto-increment id is the knowledge base's revision. Each
FAQ row remembers the revision of its last change, so any process can ask "what changed since
revision R?" and update its index incrementally: that is how an edit goes live everywhere
without a restart or a retraining.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

from core.db import metadata

STATUSES = ("draft", "published")

faqs = sa.Table(
    "faqs",
    metadata,
    sa.Column("id", sa.String(120), primary_key=True),
    sa.Column("category", sa.String(60), nullable=False, index=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("paraphrases", sa.Text, nullable=False, default="[]"),
    sa.Column("tags", sa.Text, nullable=False, default="[]"),
    sa.Column("status", sa.String(16), nullable=False, default="published"),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("revision", sa.Integer, nullable=False, index=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(80), nullable=False, default=""),
)

faq_versions = sa.Table(
    "faq_versions",
    metadata,
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("faq_id", sa.String(120), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # create | update | delete | rollback
    sa.Column("snapshot", sa.Text, nullable=False),
    sa.Column("author", sa.String(80), nullable=False, default=""),
    sa.Column("at", sa.Float, nullable=False),
)


# The knowledge base's self-calibration (knowledge/selfcalibration.py), one row per computation;
# every process reads the newest live, so the bot and the editor's preview use the same thresholds.
kb_calibration = sa.Table(
    "kb_calibration",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("revision", sa.Integer, nullable=False, index=True),
    sa.Column("computed_at", sa.Float, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

# The knowledge base's own encoders (knowledge/adaptation.py): one row per trained adaptation,
# its metadata as JSON and its adapted layers (float16 .npz, ~21 MB); every process loads the newest.
kb_adaptations = sa.Table(
    "kb_adaptations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("revision", sa.Integer, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
    sa.Column("weights", sa.LargeBinary, nullable=False),
)

# Which revision a process has started adapting: the primary key lets one web instance of several train it.
kb_adaptation_claims = sa.Table(
    "kb_adaptation_claims",
    metadata,
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
)


class StoreError(Exception):
    """A change that cannot be made; the message says why, in words an editor understands."""


class VersionConflict(StoreError):
    """The entry changed since the editor loaded it (optimistic locking)."""


class NotFound(StoreError):
    """No such FAQ entry (or version)."""


@dataclass
class Faq:
    """One FAQ entry as editors and the index see it."""

    id: str
    category: str
    question: str
    answer: str
    paraphrases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    status: str = "published"
    version: int = 1
    revision: int = 0
    deleted: bool = False
    updated_at: float = 0.0
    updated_by: str = ""

    def texts(self) -> list[str]:
        """The texts that stand for this entry in the index: the question and its paraphrases."""
        return [t for t in [self.question, *self.paraphrases] if t.strip()]

    def content(self) -> dict[str, Any]:
        """The editable fields only (what a version snapshot holds)."""
        return {
            "id": self.id,
            "category": self.category,
            "question": self.question,
            "answer": self.answer,
            "paraphrases": list(self.paraphrases),
            "tags": list(self.tags),
            "status": self.status,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row_to_faq(row: Any) -> Faq:
    return Faq(
        id=row["id"],
        category=row["category"],
        question=row["question"],
        answer=row["answer"],
        paraphrases=json.loads(row["paraphrases"]),
        tags=json.loads(row["tags"]),
        status=row["status"],
        version=row["version"],
        revision=row["revision"],
        deleted=bool(row["deleted"]),
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise one entry's editable fields; raises StoreError with the reason."""
    clean: dict[str, Any] = {}
    for key in ("id", "category", "question", "answer"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise StoreError(f"'{key}' is required")
        clean[key] = value.strip()
    if len(clean["id"]) > 120 or any(c.isspace() for c in clean["id"]):
        raise StoreError("'id' must be at most 120 characters, without spaces")
    if len(clean["answer"]) > 10_000 or len(clean["question"]) > 1_000:
        raise StoreError("question (1,000) or answer (10,000 characters) too long")
    for key in ("paraphrases", "tags"):
        value = data.get(key) or []
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.replace("|", "\n").splitlines()) if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise StoreError(f"'{key}' must be a list of texts")
        clean[key] = [v.strip() for v in value if v.strip()]
    status = data.get("status") or "published"
    if status not in STATUSES:
        raise StoreError(f"'status' must be one of {', '.join(STATUSES)}")
    clean["status"] = status
    return clean


class FaqStore:
    """Reads and writes FAQ entries with versions. Sync: call it from a worker thread."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> sa.engine.Engine:
        """The database the store lives in (the editors' usage and gap reports read it too)."""
        return self._engine

    # -- reading ---------------------------------------------------------------------------
    def get(self, faq_id: str, include_deleted: bool = False) -> Faq:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(faqs).where(faqs.c.id == faq_id)).mappings().first()
        if row is None or (row["deleted"] and not include_deleted):
            raise NotFound(f"no FAQ entry '{faq_id}'")
        return _row_to_faq(row)

    def list(self, *, status: str | None = None, category: str | None = None, search: str | None = None) -> list[Faq]:
        query = sa.select(faqs).where(faqs.c.deleted.is_(False)).order_by(faqs.c.category, faqs.c.id)
        if status:
            query = query.where(faqs.c.status == status)
        if category:
            query = query.where(faqs.c.category == category)
        if search:
            # The editor's text is literal: % and _ match themselves, not "anything".
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = f"%{escaped}%"
            query = query.where(
                sa.or_(
                    sa.func.lower(faqs.c.question).like(like, escape="\\"),
                    sa.func.lower(faqs.c.answer).like(like, escape="\\"),
                    sa.func.lower(faqs.c.id).like(like, escape="\\"),
                    sa.func.lower(faqs.c.paraphrases).like(like, escape="\\"),
                )
            )
        with self._engine.connect() as conn:
            return [_row_to_faq(r) for r in conn.execute(query).mappings()]

    def iter_all(self, batch: int = 2000) -> Iterator[Faq]:
        """Every row including drafts and deletions, in id order (index rebuilds use it)."""
        last = ""
        while True:
            query = sa.select(faqs).where(faqs.c.id > last).order_by(faqs.c.id).limit(batch)
            with self._engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            if not rows:
                return
            for row in rows:
                yield _row_to_faq(row)
            last = rows[-1]["id"]

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(faqs).where(faqs.c.deleted.is_(False))).scalar_one())

    def revision(self) -> int:
        """The newest revision (0 for an empty store)."""
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(faqs.c.revision), 0))).scalar_one())

    def changed_since(self, revision: int) -> list[Faq]:
        query = sa.select(faqs).where(faqs.c.revision > revision).order_by(faqs.c.revision)
        with self._engine.connect() as conn:
            return [_row_to_faq(r) for r in conn.execute(query).mappings()]

    def categories(self) -> list[str]:
        query = sa.select(faqs.c.category).where(faqs.c.deleted.is_(False)).distinct().order_by(faqs.c.category)
        with self._engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def history(self, faq_id: str) -> list[dict[str, Any]]:
        query = sa.select(faq_versions).where(faq_versions.c.faq_id == faq_id).order_by(faq_versions.c.revision.desc())
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise NotFound(f"no FAQ entry '{faq_id}'")
        return [{**r, "snapshot": json.loads(r["snapshot"])} for r in rows]

    def version(self, faq_id: str, version: int) -> dict[str, Any]:
        for entry in self.history(faq_id):
            if entry["version"] == version:
                return entry
        raise NotFound(f"FAQ '{faq_id}' has no version {version}")

    # -- writing ---------------------------------------------------------------------------
    def _serialize_writers(self, conn: sa.engine.Connection) -> None:
        """On PostgreSQL, writers take one advisory lock so revisions commit in order.

        Readers then never miss a change whose revision number is below one already seen.
        SQLite serialises writers by itself.
        """
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7262001)"))

    def _write(self, conn: sa.engine.Connection, data: dict[str, Any], *, version: int, action: str, author: str, deleted: bool = False) -> int:
        now = time.time()
        result = conn.execute(
            faq_versions.insert().values(
                faq_id=data["id"], version=version, action=action, snapshot=json.dumps(data), author=author, at=now
            )
        )
        revision = int(result.inserted_primary_key[0])
        values = {
            "category": data["category"],
            "question": data["question"],
            "answer": data["answer"],
            # Unescaped UTF-8, so the editor's search (LIKE) finds Chinese paraphrases and tags.
            "paraphrases": json.dumps(data["paraphrases"], ensure_ascii=False),
            "tags": json.dumps(data["tags"], ensure_ascii=False),
            "status": data["status"],
            "deleted": deleted,
            "version": version,
            "revision": revision,
            "updated_at": now,
            "updated_by": author,
        }
        exists = conn.execute(sa.select(faqs.c.id).where(faqs.c.id == data["id"])).first()
        if exists:
            conn.execute(faqs.update().where(faqs.c.id == data["id"]).values(**values))
        else:
            conn.execute(faqs.insert().values(id=data["id"], **values))
        return revision

    def create(self, data: dict[str, Any], author: str) -> Faq:
        clean = validate(data)
        with self._engine.begin() as conn:
            self._serialize_writers(conn)
            row = conn.execute(sa.select(faqs.c.deleted, faqs.c.version).where(faqs.c.id == clean["id"])).first()
            if row is not None and not row[0]:
                raise StoreError(f"an entry with id '{clean['id']}' already exists")
            version = 1 if row is None else row[1] + 1
            self._write(conn, clean, version=version, action="create", author=author)
        return self.get(clean["id"])

    def update(self, faq_id: str, data: dict[str, Any], author: str, expected_version: int | None) -> Faq:
        """Save a new version; `expected_version` is what the editor loaded (None: don't check)."""
        clean = validate({**data, "id": faq_id})
        with self._engine.begin() as conn:
            self._serialize_writers(conn)
            row = conn.execute(sa.select(faqs.c.version, faqs.c.deleted).where(faqs.c.id == faq_id)).first()
            if row is None or row[1]:
                raise NotFound(f"no FAQ entry '{faq_id}'")
            if expected_version is not None and row[0] != expected_version:
                raise VersionConflict(
                    f"'{faq_id}' was changed by someone else (now version {row[0]}, you edited version {expected_version})"
                )
            self._write(conn, clean, version=row[0] + 1, action="update", author=author)
        return self.get(faq_id)

    def delete(self, faq_id: str, author: str, expected_version: int | None = None) -> None:
        current = self.get(faq_id)
        with self._engine.begin() as conn:
            self._serialize_writers(conn)
            row = conn.execute(sa.select(faqs.c.version).where(faqs.c.id == faq_id)).first()
            if expected_version is not None and row is not None and row[0] != expected_version:
                raise VersionConflict(f"'{faq_id}' was changed by someone else")
            self._write(conn, current.content(), version=current.version + 1, action="delete", author=author, deleted=True)

    def rollback(self, faq_id: str, to_version: int, author: str) -> Faq:
        snapshot = self.version(faq_id, to_version)["snapshot"]
        current = self.get(faq_id, include_deleted=True)
        with self._engine.begin() as conn:
            self._serialize_writers(conn)
            self._write(conn, validate(snapshot), version=current.version + 1, action="rollback", author=author)
        return self.get(faq_id)

    def upsert_many(self, entries: Iterable[dict[str, Any]], author: str) -> int:
        """Create or replace many entries in ONE transaction: all or nothing (imports use it)."""
        cleaned = [validate(e) for e in entries]
        with self._engine.begin() as conn:
            self._serialize_writers(conn)
            versions = dict(conn.execute(sa.select(faqs.c.id, faqs.c.version)).all())
            for entry in cleaned:
                old = versions.get(entry["id"])
                self._write(
                    conn, entry, version=(old or 0) + 1, action="update" if old else "create", author=author
                )
                versions[entry["id"]] = (old or 0) + 1
        return len(cleaned)

    # -- self-calibration ------------------------------------------------------------------
    def save_calibration(self, revision: int, data: str) -> None:
        """Store a calibration computed for `revision` (older rows are kept as history)."""
        with self._engine.begin() as conn:
            conn.execute(kb_calibration.insert().values(revision=revision, computed_at=time.time(), data=data))

    def latest_calibration(self) -> tuple[int, str] | None:
        """(revision, data) of the newest calibration, or None before the first one."""
        rows = self.latest_calibrations(1)
        return rows[0] if rows else None

    def latest_calibrations(self, limit: int) -> list[tuple[int, str]]:
        """(revision, data) of the newest calibrations, newest first: processes on different
        encoders (a swap in progress) each pick the newest of their own."""
        query = sa.select(kb_calibration.c.revision, kb_calibration.c.data).order_by(kb_calibration.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [(int(r[0]), str(r[1])) for r in conn.execute(query)]

    # -- the knowledge base's own encoder ----------------------------------------------------
    def claim_adaptation(self, revision: int) -> bool:
        """True for the one caller that may train `revision` (False: already claimed)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(kb_adaptation_claims.insert().values(revision=revision, claimed_at=time.time()))
        except sa.exc.IntegrityError:
            return False
        return True

    def last_adaptation_claim(self) -> tuple[int, float] | None:
        """(revision, when) of the newest claim: a web instance does not start another one too soon."""
        query = sa.select(kb_adaptation_claims.c.revision, kb_adaptation_claims.c.claimed_at).order_by(
            kb_adaptation_claims.c.revision.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return (int(row[0]), float(row[1])) if row else None

    def save_adaptation(self, revision: int, meta: str, weights: bytes) -> int:
        """Store an adaptation; only it and the one before stay (a process may still be loading that)."""
        with self._engine.begin() as conn:
            previous = conn.execute(sa.select(sa.func.max(kb_adaptations.c.id))).scalar()
            result = conn.execute(kb_adaptations.insert().values(revision=revision, created_at=time.time(), meta=meta, weights=weights))
            if previous is not None:
                conn.execute(kb_adaptations.delete().where(kb_adaptations.c.id < int(previous)))
            return int(result.inserted_primary_key[0])

    def latest_adaptation(self) -> tuple[int, str] | None:
        """(id, meta) of the newest adaptation, without its weights (a cheap query, polled)."""
        query = sa.select(kb_adaptations.c.id, kb_adaptations.c.meta).order_by(kb_adaptations.c.id.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return (int(row[0]), str(row[1])) if row else None

    def adaptation_weights(self, adaptation_id: int) -> bytes:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(kb_adaptations.c.weights).where(kb_adaptations.c.id == adaptation_id)).first()
        if row is None:
            raise NotFound(f"no adaptation {adaptation_id}")
        return bytes(row[0])
