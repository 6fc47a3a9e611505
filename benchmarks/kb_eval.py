"""Any business's knowledge base, through the product's own doors (issue 10).

For each set (benchmarks/kb_sets.py: BANKING77, Bitext, Northwind held-out) this script

1. starts the real stack (bot/processes.Supervisor: Rasa + action server + web, temp var dir),
2. logs in as an editor, deletes what the knowledge base holds, imports the set's entries through
   `POST /api/editor/import?format=yaml&apply=1`, and waits until it is live (the action server
   answers an entry's own question with that entry, and the self-calibration for the new
   revision is stored: GET /api/editor/calibration),
3. asks every test question as the first message of a new REST conversation and reads the
   bot's decision from the reply (`decision`, `faq_id`, buttons of a "did you mean"),
4. compares with the retrieval engine alone (Tandem's embedder, best cosine per entry, the same
   self-calibrated thresholds and knowledge/decision.py) and BM25 alone (top-1, no threshold).

    $VENV/bin/python benchmarks/kb_eval.py [--sets banking77,bitext,northwind] [--limit 300] [--no-docs]

Metrics: in-scope answered right (share of answerable questions answered with the right entry),
out-of-scope refused (share of left-out questions given no FAQ answer), answer precision (right
answers / all answers), clarify rate and how often the right entry was among its two options.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kb_sets  # noqa: E402
from common import IMAGES, free_port, machine, markdown_table, today, write_section  # noqa: E402
from embed_cache import embed  # noqa: E402
from bm25 import Bm25  # noqa: E402

from core.settings import load_settings  # noqa: E402
from actions.policy import Candidate  # noqa: E402
from knowledge.decision import ANSWER, CLARIFY, Thresholds, decide  # noqa: E402
from knowledge.entry_head import EntryHead  # noqa: E402
from knowledge.scoring import entry_scores, stretch  # noqa: E402
from knowledge.models import E5, MINILM, choose, score_stretch  # noqa: E402
from knowledge.selfcalibration import compute, offtopic_for  # noqa: E402

SECTION = "Knowledge base through the product's doors (issue 10)"
TOKEN = re.compile(r"[a-z0-9]+")
FAQ_PAYLOAD = re.compile(r'"faq_id":\s*"([^"]+)"')


@dataclass
class Outcome:
    action: str  # answer | clarify | miss | escalate | other
    faq_id: str | None = None
    options: tuple[str, ...] = ()
    reason: str = ""  # an escalation's reason and detail, as the agent's console shows them


@dataclass
class Score:
    n_in: int = 0
    n_out: int = 0
    right: int = 0
    answered: int = 0
    answered_out: int = 0
    clarified: int = 0
    clarify_has_right: int = 0
    actions: dict[str, int] = field(default_factory=dict)

    def add(self, label: str | None, outcome: Outcome) -> None:
        self.actions[outcome.action] = self.actions.get(outcome.action, 0) + 1
        if label is None:
            self.n_out += 1
        else:
            self.n_in += 1
        if outcome.action == ANSWER:
            self.answered += 1
            if label is None:
                self.answered_out += 1
            elif outcome.faq_id == label:
                self.right += 1
        if outcome.action == CLARIFY:
            self.clarified += 1
            self.clarify_has_right += int(label is not None and label in outcome.options)

    def row(self) -> dict[str, float]:
        return {
            "in_scope_right": self.right / self.n_in if self.n_in else 0.0,
            "oos_refused": 1 - self.answered_out / self.n_out if self.n_out else float("nan"),
            "precision": self.right / self.answered if self.answered else 1.0,
            "answered_in": (self.answered - self.answered_out) / self.n_in if self.n_in else 0.0,
            "clarify_rate": self.clarified / (self.n_in + self.n_out),
            "clarify_right_in_options": self.clarify_has_right / self.clarified if self.clarified else float("nan"),
        }


# -- the stack ----------------------------------------------------------------------------------
class Product:
    """The running stack and the doors a business and its customers use."""

    def __init__(self, var_dir: Path, head: bool = True, adapt: bool = True) -> None:
        from server.cli import prepare
        from server.processes import Supervisor

        self.settings = load_settings(var_dir=var_dir, web_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                                      secret_key="kb-eval", database_url="", rate_limits=False,
                                      faq_head=head,  # one address asks thousands
                                      # the knowledge base's own encoder, trained as soon as the import is done
                                      faq_adaptation=adapt, adapt_delay_s=5.0, adapt_interval_s=0.0, adapt_threads=2)
        print("preparing the stack (trains the Rasa model if config/data changed) ...", flush=True)
        model = prepare(self.settings)
        self.supervisor = Supervisor(self.settings, model=model)
        self.supervisor.start()
        self.http = httpx.Client(base_url=self.settings.web_url, timeout=120)
        login = self.http.post("/api/editor/login", json={"username": "editor", "password": "editor"})
        login.raise_for_status()
        self.editor = {"Authorization": f"Bearer {login.json()['token']}"}
        staff = self.http.post("/api/agent/login", json={"username": "supervisor", "password": "supervisor"})
        staff.raise_for_status()
        self.supervisor_headers = {"Authorization": f"Bearer {staff.json()['token']}"}

    def close(self) -> None:
        self.http.close()
        self.supervisor.stop()

    def replace_knowledge(self, kbset: kb_sets.KbSet) -> dict[str, Any]:
        """Delete every entry, import the set's entries, wait until both processes serve them."""
        existing = self.http.get("/api/editor/faqs", headers=self.editor, params={"limit": 1000}).json()["faqs"]
        for faq in existing:
            self.http.delete(f"/api/editor/faqs/{faq['id']}", headers=self.editor).raise_for_status()
        body = yaml.safe_dump({"faqs": [e.to_import() for e in kbset.entries]}, allow_unicode=True, sort_keys=False)
        started = time.monotonic()
        report = self.http.post("/api/editor/import", params={"format": "yaml", "apply": "1"}, headers=self.editor,
                                content=body.encode())
        if report.status_code != 200:
            raise SystemExit(f"import refused: {report.status_code} {report.text[:500]}")
        probes = kbset.entries[:: max(1, len(kbset.entries) // 5)][:5]
        deadline = time.monotonic() + 2400
        calibration: dict[str, Any] = {}
        live = False
        while time.monotonic() < deadline:
            time.sleep(2)
            if not live:  # any of a few entries answered with itself (NLU may route one elsewhere)
                live = any(self.ask(p.question).faq_id == p.id for p in probes)
            state = self.http.get("/api/editor/calibration", headers=self.editor).json()
            adapted = state.get("adaptation") or {}
            waiting = adapted.get("state") in ("waiting", "training", "loading") or (
                adapted.get("state") in ("in force", "shipped encoder kept") and (adapted.get("revision") or 0) < state["revision"])
            if live and state["calibration"] and not state["pending"] and not state.get("head_pending") and not waiting:
                calibration = state
                # the action server re-embeds with the same encoder and fits the same head
                time.sleep(2 * ((state.get("head") or {}).get("seconds") or 0) + (adapted.get("swap_seconds") or 0) + 3)
                break
        print(f"  imported {report.json()['applied']} entries; live and calibrated after {time.monotonic() - started:.0f}s: "
              f"{(calibration.get('calibration') or {}).get('summary', 'NOT calibrated')}; "
              f"{(calibration.get('adaptation') or {}).get('summary') or 'shipped encoder'}", flush=True)
        return calibration

    def ask(self, text: str) -> Outcome:
        """The first message of a new REST conversation; the bot's decision from its replies."""
        started = self.http.post("/api/conversations").json()
        reply = self.http.post(f"/api/conversations/{started['conversation_id']}/messages", json={"text": text},
                               headers={"Authorization": f"Bearer {started['token']}"})
        reply.raise_for_status()
        messages = reply.json()["replies"]
        for message in messages:
            decision = message.get("decision")
            if message.get("faq_id") and (decision in (None, ANSWER)):
                return Outcome(ANSWER, message["faq_id"])
            if decision == CLARIFY or (message.get("buttons") and any("faq_id" in b.get("payload", "") for b in message["buttons"])):
                options = tuple(m.group(1) for b in message.get("buttons", []) if (m := FAQ_PAYLOAD.search(b.get("payload", ""))))
                return Outcome(CLARIFY, None, options)
        if any(m.get("kind") == "queued" for m in messages):
            return Outcome("escalate", reason=self.case_reason(started["conversation_id"]))
        decisions = [m.get("decision") for m in messages if m.get("decision")]
        return Outcome(decisions[0] if decisions else "other")


    def case_reason(self, conversation_id: str) -> str:
        listed = self.http.get("/api/agent/cases", params={"status": "waiting"}, headers=self.supervisor_headers)
        for case in listed.json().get("cases", []) if listed.status_code == 200 else []:
            if case.get("conversation_id") == conversation_id:
                shown = self.http.get(f"/api/agent/cases/{case['id']}", headers=self.supervisor_headers).json().get("case", {})
                return f"{shown.get('reason', case.get('reason'))}: {shown.get('reason_detail') or shown.get('detail') or ''}"[:300]
        return "(case not found)"


# -- the engine alone ---------------------------------------------------------------------------
def model_for(kbset: kb_sets.KbSet) -> str:
    """The encoder the product picks for this set (knowledge/models.py, knowledge_language auto)."""
    return "e5" if choose("auto", [e.question for e in kbset.entries]) == E5 else "minilm"


def engine_outcomes(kbset: kb_sets.KbSet, th: Thresholds, use_head: bool = True) -> tuple[list[Outcome], np.ndarray, np.ndarray, list[int | None]]:
    """Tandem's retrieval without Rasa: knowledge/scoring.py's entry scores, then knowledge/decision.py."""
    texts, owner = [], []
    for j, e in enumerate(kbset.entries):
        for t in e.texts():
            texts.append(t)
            owner.append(j)
    model = model_for(kbset)
    vectors = embed(texts, model)
    owner_arr = np.array(owner)  # texts are already grouped by entry, in entry order
    starts = np.flatnonzero(np.r_[True, owner_arr[1:] != owner_arr[:-1]])
    q = embed([x.text for x in kbset.questions], model)
    scores = stretch(entry_scores(q @ vectors.T, starts), score_stretch(E5 if model == "e5" else MINILM))
    ids = [e.id for e in kbset.entries]
    # The knowledge base's own head, as every answering process trains it (knowledge/entry_head.py).
    head = EntryHead.train(vectors, [ids[j] for j in owner], 1, model) if use_head else None
    out = []
    ranked = scores.copy()
    for i, row in enumerate(scores):
        top = np.argsort(-row)[:10 if head else 5]
        found = [Candidate(ids[j], float(row[j])) for j in top]
        if head is not None:
            ranks = head.rank_scores(q[i], [c.faq_id for c in found], [c.score for c in found])
            found = sorted((Candidate(c.faq_id, c.score, rank_score=r) for c, r in zip(found, ranks)), key=lambda c: c.rank, reverse=True)[:5]
            ranked[i, [ids.index(c.faq_id) for c in found]] = [c.rank + 10 for c in found]  # argmax = the head's top-1
        verdict = decide(found, th)
        out.append(Outcome(verdict.action, verdict.faq_id, tuple(o.faq_id for o in verdict.options)))
    col = {faq_id: j for j, faq_id in enumerate(ids)}
    return out, scores, ranked, [col[x.label] if x.label else None for x in kbset.questions]


def self_calibrate_offline(kbset: kb_sets.KbSet) -> Thresholds:
    """The same self-calibration the product runs, on the same vectors (for --engine-only runs)."""
    texts, owners = [], []
    for e in kbset.entries:
        for t in e.texts():
            texts.append(t)
            owners.append(e.id)
    model = model_for(kbset)
    cal = compute(embed(texts, model), owners, embed(offtopic_for(model == "e5"), model), revision=1,
                  stretch=score_stretch(E5 if model == "e5" else MINILM))
    settings = load_settings()
    return Thresholds(cal.faq_threshold, settings.clarify_margin, cal.clarify_floor, source="offline self-calibration")


def bm25_top1(kbset: kb_sets.KbSet) -> float:
    """BM25 alone (per-text max): top-1 accuracy on the answerable questions."""
    docs, owner = [], []
    for e in kbset.entries:
        for t in e.texts():
            docs.append(t)
            owner.append(e.id)
    owner_arr = np.array(owner)
    asked = kbset.in_scope
    scores = Bm25(docs).scores([x.text for x in asked])
    return float(np.mean([owner_arr[int(np.argmax(row))] == x.label for row, x in zip(scores, asked)]))


def curve(scores: np.ndarray, labels: list[int | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = np.arange(0.2, 0.95, 0.01)
    top, win = scores.max(1), scores.argmax(1)
    ins = np.array([l is not None for l in labels])
    lab = np.array([l if l is not None else -1 for l in labels])
    right = np.array([(ins & (win == lab) & (top >= t)).sum() / max(ins.sum(), 1) for t in grid])
    refused = np.array([((~ins) & (top < t)).sum() / max((~ins).sum(), 1) for t in grid])
    return grid, right, refused


def plot(curves: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.4), squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items()):
        ax.plot(c["grid"], c["right"], label="engine: in-scope answered right", color="tab:green")
        ax.plot(c["grid"], c["refused"], label="engine: out-of-scope refused", color="tab:purple")
        ax.axvline(c["threshold"], color="black", linewidth=1, label=f"self-calibrated {c['threshold']:.2f}")
        if c.get("product"):
            p = c["product"]
            ax.scatter([c["threshold"]], [p["in_scope_right"]], color="tab:green", marker="x", s=80, label="product (REST)")
            ax.scatter([c["threshold"]], [p["oos_refused"]], color="tab:purple", marker="x", s=80)
        ax.set_title(name)
        ax.set_xlabel("answer threshold (cosine)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="banking77,bitext,northwind")
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions per set (a quick run)")
    parser.add_argument("--paraphrases", type=int, default=None,
                        help="at most this many paraphrases per imported entry (engine and product alike)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--engine-only", action="store_true", help="no stack: the engine and BM25 only")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--no-head", action="store_true", help="engine without the knowledge base's head (the product follows faq_head)")
    parser.add_argument("--no-adaptation", action="store_true", help="the product without the knowledge base's own encoder")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tmp = tempfile.TemporaryDirectory(prefix="tandem-kb-eval-")
    product = None if args.engine_only else Product(Path(tmp.name), head=not args.no_head, adapt=not args.no_adaptation)
    rows: list[list[str]] = []
    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    dump: dict[str, Any] = {}
    try:
        for name in args.sets.split(","):
            kbset = kb_sets.capped(kb_sets.SETS[name]().limited(args.limit), args.paraphrases)
            print(f"{kbset.name}: {len(kbset.entries)} entries, asking {len(kbset.in_scope)} in-scope + "
                  f"{len(kbset.out_of_scope)} out-of-scope questions", flush=True)
            if product is not None:
                state = product.replace_knowledge(kbset)
                adapted = (state.get("adaptation") or {}).get("state") == "in force"
                # The engine is the shipped MiniLM: an adapted encoder's thresholds are on its own scores.
                th = Thresholds(**{k: v for k, v in state["thresholds"].items()}) if state and not adapted else self_calibrate_offline(kbset)
            else:
                state, th = {}, self_calibrate_offline(kbset)
            engine, scores, ranked, labels = engine_outcomes(kbset, th, use_head=not args.no_head)
            e_score = Score()
            for q, o in zip(kbset.questions, engine):
                e_score.add(q.label, o)
            p_score = None
            p_outcomes: list[Outcome] = []
            if product is not None:
                p_score = Score()
                done = 0
                t0 = time.monotonic()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    for q, o in zip(kbset.questions, pool.map(lambda x: product.ask(x.text), kbset.questions)):
                        p_score.add(q.label, o)
                        p_outcomes.append(o)
                        done += 1
                        if done % 25 == 0 or done == len(kbset.questions):
                            r = p_score.row()
                            print(f"  {done}/{len(kbset.questions)} asked ({done / (time.monotonic() - t0):.1f}/s): "
                                  f"in-scope right {r['in_scope_right']:.3f}, OOS refused {r['oos_refused']:.3f}, "
                                  f"precision {r['precision']:.3f}; decisions {p_score.actions}", flush=True)
            bm = bm25_top1(kbset)
            top1 = float(np.mean([scores[i].argmax() == l for i, l in enumerate(labels) if l is not None]))
            top1_head = float(np.mean([ranked[i].argmax() == l for i, l in enumerate(labels) if l is not None]))
            if product is not None:
                dump[kbset.name] = [{"text": q.text, "label": q.label, "engine": e.__dict__, "product": p.__dict__}
                                    for q, e, p in zip(kbset.questions, engine, p_outcomes)]
            results[kbset.name] = {"thresholds": th.to_dict(), "calibration": (state or {}).get("calibration"),
                                   "adaptation": (state or {}).get("adaptation"),
                                   "engine": e_score.row(), "engine_top1": top1, "bm25_top1": bm,
                                   "product": p_score.row() if p_score else None, "product_actions": p_score.actions if p_score else None,
                                   "n_in": e_score.n_in, "n_out": e_score.n_out}
            grid, right, refused = curve(scores, labels)
            curves[kbset.name] = {"grid": grid, "right": right, "refused": refused, "threshold": th.faq_threshold,
                                  "product": p_score.row() if p_score else None}
            p_threshold = float(((state or {}).get("thresholds") or {}).get("faq_threshold", th.faq_threshold))
            p_name = "product (REST" + (", its own encoder)" if (state or {}).get("adaptation", {}).get("state") == "in force" else ")")
            for system, r, t in ((p_name, p_score.row() if p_score else None, p_threshold), ("engine alone", e_score.row(), th.faq_threshold)):
                if r is None:
                    continue
                rows.append([kbset.name, system, f"{t:.2f}", f"{r['in_scope_right']:.3f}", f"{r['oos_refused']:.3f}",
                             f"{r['precision']:.3f}", f"{r['answered_in']:.3f}", f"{r['clarify_rate']:.3f}"])
            rows.append([kbset.name, "engine top-1, cosine (no threshold)", "-", f"{top1:.3f}", "-", "-", "-", "-"])
            if not args.no_head:
                rows.append([kbset.name, "engine top-1, cosine + head (no threshold)", "-", f"{top1_head:.3f}", "-", "-", "-", "-"])
            rows.append([kbset.name, "BM25 alone top-1 (no threshold)", "-", f"{bm:.3f}", "-", "-", "-", "-"])
    finally:
        if product is not None:
            product.close()
        tmp.cleanup()
    table = markdown_table(["set", "system", "threshold", "in-scope answered right", "OOS refused", "precision",
                            "in-scope answered", "clarify rate"], rows)
    print()
    print(table)
    Path("/tmp/tandem-cache").mkdir(exist_ok=True)
    Path("/tmp/tandem-cache/kb_eval.json").write_text(json.dumps(results, indent=1, default=str))
    Path("/tmp/tandem-cache/kb_eval_questions.json").write_text(json.dumps(dump, indent=1, default=str))
    image = IMAGES / "kb-eval.png"
    plot(curves, image)
    print(f"\nplot: {image}; raw: /tmp/tandem-cache/kb_eval.json; {time.monotonic() - started:.0f}s")
    if not args.no_docs:
        command = "$VENV/bin/python benchmarks/kb_eval.py" + (f" --sets {args.sets}" if args.sets != parser.get_default("sets") else "") + \
                  (f" --limit {args.limit}" if args.limit else "") + (f" --paraphrases {args.paraphrases}" if args.paraphrases else "") + (" --engine-only" if args.engine_only else "")
        write_section(SECTION, f"Command: `{command}` ({today()}; {machine()}).\n\n{table}\n\n![curves](img/{image.name})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
