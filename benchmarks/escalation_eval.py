"""When does a person step in? Precision, recall and timing of escalation on labelled conversations.

data/eval/conversations.yml: Northwind Goods customers (calm, mildly annoyed, angry, confused,
off-topic, asking for a person, sensitive topics, rephrasing the same question), each labelled
with the 1-based turn where a person should step in (`escalate_at`, null = never). Every turn is
parsed by the trained Rasa model (config.yml's pipeline, so the sentiment comes from
nlu/sentiment.py), searched in a FAQ index built from data/faq.yml, and replayed through
actions/policy.decide with the thresholds in tandem.yml. `--stack N` also sends the first N
conversations through a real running Tandem (REST channel, Rasa, action server, router) and
compares the turn it escalated at with the in-process replay.

    $VENV/bin/python benchmarks/escalation_eval.py --write-set   # (re)generate the labelled set (seeded)
    nice -n 10 $VENV/bin/python benchmarks/escalation_eval.py [--stack 40]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, today, write_section  # noqa: E402

SET = ROOT / "data" / "eval" / "conversations.yml"
HELDOUT = ROOT / "data" / "eval" / "heldout.yml"

GREET = ["hi", "hello there", "hey", "good morning", "hi, quick question", "hello, hope you can help", "evening", "hiya"]
THANKS = ["thanks!", "great, thank you", "ok thanks, that helps", "perfect, cheers", "thank you so much", "brilliant thanks", "lovely, thanks", "ok bye"]
MILD = [
    "my parcel is a couple of days late, where is it?", "ugh, the box arrived a bit dented, what do I do", "annoying, my discount code isn't working",
    "the jumper I got is the wrong size, how do i swap it", "my payment got declined, why?", "I think I was charged twice for the same order",
    "my password reset email never comes", "the blender stopped working after a month, is it under warranty",
    "the sofa doesn't fit through the door sadly, can i send it back", "shame the lamp is out of stock, when is it back",
    "i missed the delivery yesterday, what now", "bit disappointed, my points never showed up after my last order",
    "the refund still isn't on my card, how long does it take", "i'm locked out of my account, how do I get back in",
    "one of the mugs was missing from my box", "the courier didn't even ring the bell, where can I pick it up",
]
FURIOUS = [
    "This is RIDICULOUS, I've been waiting 3 weeks for my order and nobody answers!!!", "worst customer service ever, where is my f***ing refund",
    "I'M SO DONE WITH THIS. WHERE IS MY ORDER", "absolutely useless, third time I'm asking about my refund!!",
    "you people are a joke, my parcel is lost and nobody cares", "what a pathetic excuse for a company, my sofa arrived smashed and no one replies",
    "unacceptable!!! two weeks and still no refund", "are you even listening? I said the item is broken!!!",
    "I'm sick of this, every time I ask I get the same useless answer", "seriously?? you cancelled my order without telling me, disgusting",
    "stop sending me links and fix my order, this is a waste of my time", "FOURTH time asking. WHERE. IS. MY. MONEY.",
    "your courier is incompetent, threw my parcel over the fence and it's broken!!!", "had enough of this crap, just refund me",
    "this is a shambles, worst shopping experience of my life!!", "how many times do I have to explain, the refund never came!!!",
]
NEGATIVE = [
    "that doesn't tell me anything, the tracking page hasn't moved in a week", "I already did that and it still doesn't work",
    "so I just have to keep waiting? I've waited two weeks already", "nobody has replied to my emails either",
    "this is really disappointing, I needed it for my son's birthday", "that's not helpful at all", "I'm getting really annoyed now",
    "the link you sent doesn't work either", "I've been charged and still have nothing", "it's been three weeks, this can't be normal",
    "and the courier says it's your problem, great", "I'm really unhappy with how this has been handled",
]
HUMAN = [
    "can I talk to a real person", "agent please", "I want to speak to someone from your team", "get me a human",
    "is there a person I can chat to?", "put me through to customer service please", "I'd rather talk to a human",
    "connect me with an agent", "let me talk to a manager", "I need a real person not a bot", "human please", "can a member of staff help me instead",
]
SENSITIVE = [
    "the kettle I bought sparked and tripped the electrics", "my son got an electric shock from the lamp you sold me",
    "the heater started smoking in the living room", "the charger overheated and burned my hand",
    "I'm going to take legal action if this isn't sorted", "my lawyer will be in touch about this", "I'll see you in small claims court",
    "there's an unauthorised charge from Northwind on my card", "someone used my account to place orders I didn't make",
    "I think my account was hacked, there are orders to an address I don't know", "the glass table shattered and my daughter was injured",
    "the toy you sold has small parts, my toddler nearly choked on one", "I'm reporting you to trading standards",
    "I didn't make this purchase, I think it's fraud", "close my account, I'm done with you lot, terrible service",
]
OFF_TOPIC = [
    "what's the weather like in Paris", "can you recommend a good film", "who won the football last night", "tell me a joke",
    "what's 17 times 23", "how do I bake sourdough", "can you fix my grandmother's bicycle chain?", "what's the capital of mongolia",
    "do you know a good plumber", "write me a poem about cats", "is it going to rain tomorrow", "can you help with my maths homework",
    "what time is it in Tokyo", "recommend me a holiday destination", "who is the best footballer ever",
]
VAGUE = [
    "it's about the thing", "erm hello?", "the stuff", "about my thing from before", "not working", "it broke", "hmm",
    "what about it", "so?", "the email thing", "that one", "the other one i said", "you know what i mean", "same as last time", "the blue one",
]
REPHRASE_PREFIX = [
    "no, that's not what I asked. ", "you're not listening. ", "I already asked this: ", "that didn't answer my question. ",
    "read my question please. ", "no no no. ", "that's useless. ",
]
STILL = ["still no answer to my question", "that doesn't help, same question again", "you keep dodging it", "I asked a simple question"]


def faq_texts() -> dict[str, list[str]]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for q in yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))["questions"]:
        if q["kind"] == "faq":
            by_label[q["label"]].append(q["text"])
    return dict(by_label)


def generate(seed: int = 6) -> list[dict[str, Any]]:
    """The labelled set, from hand-written pools and the held-out FAQ questions, seeded."""
    rnd = random.Random(seed)
    faqs = faq_texts()
    labels = sorted(faqs)
    multi = [label for label in labels if len(faqs[label]) >= 2]
    conversations: list[dict[str, Any]] = []

    def q() -> str:
        return rnd.choice(faqs[rnd.choice(labels)])

    def add(kind: str, turns: list[str], escalate_at: int | None, note: str, tier: str | None = None) -> None:
        item: dict[str, Any] = {"id": f"{kind}-{sum(1 for c in conversations if c['kind'] == kind) + 1:03d}", "kind": kind, "turns": turns,
                                "escalate_at": escalate_at, "note": note}
        if tier:
            item["tier"] = tier
        conversations.append(item)

    for _ in range(90):
        turns = ([rnd.choice(GREET)] if rnd.random() < 0.4 else []) + [q() for _ in range(rnd.randint(1, 3))]
        turns += [rnd.choice(THANKS)] if rnd.random() < 0.5 else []
        add("calm", turns, None, "answerable questions, no reason for a person")
    for _ in range(30):
        turns = ([q()] if rnd.random() < 0.3 else []) + [rnd.choice(MILD)] + ([rnd.choice(THANKS)] if rnd.random() < 0.5 else [])
        add("mildly_negative", turns, None, "a problem described calmly: the FAQ answers it")
    for _ in range(30):
        turns = ([rnd.choice(GREET)] if rnd.random() < 0.3 else []) + ([q()] if rnd.random() < 0.4 else []) + [rnd.choice(FURIOUS)]
        add("angry", turns, len(turns), "furious message: a person now")
    for _ in range(25):
        a, b = rnd.sample(NEGATIVE, 2)
        add("souring", [q(), a, b], 3, "displeasure sustained over two turns")
    for _ in range(30):
        turns = [q() for _ in range(rnd.randint(0, 2))] + [rnd.choice(HUMAN)]
        add("asks_for_person", turns, len(turns), "explicit request for a person")
    for _ in range(25):
        turns = ([q()] if rnd.random() < 0.4 else []) + [rnd.choice(SENSITIVE)]
        add("sensitive", turns, len(turns), "safety, legal, fraud or angry cancellation")
    for _ in range(15):
        add("off_topic_once", [rnd.choice(OFF_TOPIC), q()] + ([rnd.choice(THANKS)] if rnd.random() < 0.5 else []), None,
            "one off-topic question, then a real one")
    for _ in range(15):
        a, b = rnd.sample(OFF_TOPIC, 2)
        add("off_topic_twice", [a, b], 2, "two unanswerable turns in a row: stuck (house rule: max_misses = 2)")
    for _ in range(25):
        a, b = rnd.sample(VAGUE, 2)
        add("confused", ([rnd.choice(GREET)] if rnd.random() < 0.3 else []) + [a, b], None, "")
        conversations[-1]["escalate_at"] = len(conversations[-1]["turns"])
        conversations[-1]["note"] = "cannot say what they need: a person after the second try"
    for _ in range(20):
        label = rnd.choice(multi)
        first, second = rnd.sample(faqs[label], 2)
        add("rephrasing_annoyed", [first, rnd.choice(REPHRASE_PREFIX) + second], 2, "asks the same again and says the answer did not help")
    for _ in range(15):
        label = rnd.choice(multi)
        first, second = rnd.sample(faqs[label], 2)
        add("rephrasing_stuck", [first, second, rnd.choice(STILL)], 3, "third try at the same question")
    for _ in range(10):
        add("gold_stuck", [rnd.choice(VAGUE)], 1, "a Gold member the bot cannot help: a person at once", tier="gold")
    return conversations


def write_set(path: Path = SET) -> None:
    conversations = generate()
    header = (
        "# Labelled conversations for the escalation benchmark (benchmarks/escalation_eval.py) and\n"
        "# `./tandem calibrate`. Generated (seeded) by `benchmarks/escalation_eval.py --write-set` from\n"
        "# hand-written pools of Northwind Goods customer messages and the held-out FAQ questions.\n"
        "#   escalate_at: 1-based turn where a person should step in; null = the bot should cope.\n"
        "#   tier: customer tier sent as metadata (optional).\n"
    )
    path.write_text(header + yaml.safe_dump({"conversations": conversations}, sort_keys=False, allow_unicode=True, width=140), encoding="utf-8")
    print(f"wrote {len(conversations)} conversations to {path}")


def open_kb(var_dir: Path) -> Any:
    from core.db import sync_engine
    from server.schema import create_schema
    from core.settings import load_settings
    from knowledge.base import KnowledgeBase, seed_if_empty
    from knowledge.store import FaqStore

    settings = load_settings(var_dir=var_dir, faq_adaptation=False)  # the shipped encoder, as calibrated
    create_schema(settings)
    kb = KnowledgeBase(FaqStore(sync_engine(settings)), settings.index_dir, language=settings.knowledge_language)
    seed_if_empty(kb.store, settings.faq_file)
    kb.open()
    return kb


def latest_model(models_dir: Path) -> Path:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit(f"no trained model in {models_dir}: run ./tandem train first")
    return models[-1]


def through_stack(conversations: list[Any], model: Path) -> dict[str, int | None]:
    """The real path: REST channel -> router -> Rasa -> action server; the turn the mode became 'waiting'."""
    import tempfile

    import httpx

    from server.cli import prepare
    from server.processes import Supervisor
    from tests.conftest import stack_settings

    settings = stack_settings(Path(tempfile.mkdtemp(prefix="tandem-esc-")))
    prepare(settings, train=False)
    supervisor = Supervisor(settings, model=model)
    supervisor.start()
    found: dict[str, int | None] = {}
    try:
        with httpx.Client(base_url=settings.web_url, timeout=60) as http:
            for c in conversations:
                body = http.post("/api/conversations").json()  # the router sends no tier yet (see docs/evaluation.md)
                headers = {"Authorization": f"Bearer {body['token']}"}
                found[c.id] = None
                for number, text in enumerate(c.turns, start=1):
                    reply = http.post(f"/api/conversations/{body['conversation_id']}/messages", json={"text": text}, headers=headers).json()
                    if reply.get("mode") != "bot":
                        found[c.id] = number
                        break
    finally:
        supervisor.stop()
    return found


def batch_parse(model: Path, kb: Any, conversations: list[Any]) -> dict[str, list[Any]]:
    """actions.calibration.parse_conversations, with the NLU graph run on batches of messages."""
    from actions.calibration import ParsedTurn
    from actions.policy import Candidate
    from benchmarks.conversation_nlu_eval import _parse

    texts = sorted({t for c in conversations for t in c.turns})
    parsed = _parse(model, texts)
    vectors = kb.embedder.encode(texts, batch_size=64)
    matches = {t: [Candidate(m.faq_id, m.score, m.question) for m in kb.search_vector(v, 5)] for t, v in zip(texts, vectors)}
    return {c.id: [ParsedTurn(t, parsed[t], matches[t]) for t in c.turns] for c in conversations}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-set", action="store_true", help="regenerate data/eval/conversations.yml and stop")
    parser.add_argument("--stack", type=int, default=0, help="also run the first N conversations (spread over kinds) through a real stack")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--calibrated", action="store_true",
                        help="answer/clarify thresholds from the knowledge base's self-calibration, as the product (default: tandem.yml's)")
    parser.add_argument("--adaptation", action="store_true",
                        help="with the knowledge base's own encoder, trained here as the web process's child would (implies --calibrated)")
    parser.add_argument("--batch", action="store_true",
                        help="parse through the model's NLU graph in batches (same components; much faster on a busy machine)")
    args = parser.parse_args()
    if args.write_set:
        write_set()
        return
    from actions.calibration import load_conversations, parse_conversations, replay, score_escalations
    from actions.policy import Thresholds
    from core.settings import load_settings

    settings = load_settings()
    th = Thresholds.from_settings(settings)
    conversations = load_conversations(SET)
    model = latest_model(settings.models_dir)
    kb = open_kb(Path("/tmp/tandem-escalation-var"))
    if args.adaptation:
        from knowledge import adaptation

        found = kb._latest_adaptation()  # noqa: SLF001 - a previous run's, for this revision
        if found is None or found.revision != kb.index.revision:
            print("training the knowledge base's own encoder (knowledge/adaptation.py) ...", flush=True)
            found = adaptation.run_job(kb.store, kb.index.revision, settings.adapt_steps, threads=os.cpu_count() or 1)
        if found is None:
            raise SystemExit("no adaptation for this revision (claimed by an earlier run that failed: remove /tmp/tandem-escalation-var)")
        kb.adapt_now(found)
        print(f"encoder: {kb.encoder_name}; {found.summary()}", flush=True)
    if args.calibrated or args.adaptation:
        from knowledge.decision import Thresholds as RetrievalThresholds

        cal = kb.calibrate_now()
        th = th.with_retrieval(RetrievalThresholds.from_settings(settings, cal))
        print(f"self-calibration: {cal.summary} (threshold {cal.faq_threshold:.2f})", flush=True)
        kb.train_head_now()  # the head each answering process fits after a change
    started = time.monotonic()
    parsed = batch_parse(model, kb, conversations) if args.batch else parse_conversations(model, kb, conversations)
    replayed = {c.id: replay(parsed[c.id], th, c.tier) for c in conversations}
    predicted = {cid: r[0] for cid, r in replayed.items()}
    overall = score_escalations(conversations, predicted)
    print(f"parsed and replayed {len(conversations)} conversations in {time.monotonic() - started:.0f}s with {th}")
    rows = []
    for kind in dict.fromkeys(c.kind for c in conversations):
        group = [c for c in conversations if c.kind == kind]
        s = score_escalations(group, predicted)
        should = sum(1 for c in group if c.escalate_at is not None)
        got = sum(1 for c in group if predicted[c.id] is not None)
        reasons: dict[str, int] = defaultdict(int)
        for c in group:
            decision = next((d for d in replayed[c.id][1][::-1] if d is not None and d.action == "escalate"), None)
            if decision:
                reasons[decision.reason] += 1
        rows.append([kind, len(group), should, got, s["tp"], s["fp"], s["fn"], f"{s['mean_delay']:+.2f}" if s["tp"] else "-",
                     ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))])
    table = markdown_table(["kind", "conversations", "should escalate", "escalated", "TP", "FP", "FN", "mean turns late", "reasons"], rows)
    summary = (f"precision {overall['precision']:.3f}, recall {overall['recall']:.3f}, F1 {overall['f1']:.3f}; of the {overall['tp']} right "
               f"escalations {overall['exact']:.0%} at the labelled turn, {overall['on_time']:.0%} within one turn, {overall['late']} late, "
               f"{overall['early']} early (mean {overall['mean_delay']:+.2f} turns)")
    print(table)
    print(summary)
    stack_text = ""
    if args.stack:
        by_kind: dict[str, list[Any]] = defaultdict(list)
        for c in conversations:
            if not c.tier:  # tiers cannot be sent through the REST channel yet
                by_kind[c.kind].append(c)
        subset: list[Any] = []
        while len(subset) < args.stack and any(by_kind.values()):
            for kind in list(by_kind):
                if by_kind[kind] and len(subset) < args.stack:
                    subset.append(by_kind[kind].pop(0))
        started = time.monotonic()
        real = through_stack(subset, model)
        agree = sum(1 for c in subset if real[c.id] == predicted[c.id])
        real_score = score_escalations(subset, real)
        replay_score = score_escalations(subset, {c.id: predicted[c.id] for c in subset})
        disagreements = [f"{c.id}: stack {real[c.id]}, replay {predicted[c.id]}" for c in subset if real[c.id] != predicted[c.id]]
        stack_text = (f"\n\nThrough the real stack (`--stack {args.stack}`: REST -> router -> Rasa -> action server, {time.monotonic() - started:.0f}s): "
                      f"{len(subset)} conversations, the escalation turn agrees with the in-process replay in {agree}/{len(subset)}; "
                      f"stack precision {real_score['precision']:.3f} recall {real_score['recall']:.3f} "
                      f"(replay on the same subset: {replay_score['precision']:.3f} / {replay_score['recall']:.3f})."
                      + (f" Disagreements: {'; '.join(disagreements[:10])}." if disagreements else ""))
        print(stack_text.strip())
    if args.no_docs:
        return
    write_section("Escalation on labelled conversations (issue 6)", (
        f"Command: `nice -n 10 $VENV/bin/python benchmarks/escalation_eval.py{' --stack ' + str(args.stack) if args.stack else ''}` "
        f"({today()}; {machine()}).\n\n{len(conversations)} conversations from data/eval/conversations.yml, model {model.name}, thresholds from "
        f"tandem.yml: faq {th.faq_threshold}, sentiment {th.sentiment_threshold}, frustration {th.frustration_threshold}, "
        f"clarify margin {th.clarify_margin}.\n\nOverall: {summary}.\n\n{table}{stack_text}\n"
    ))


if __name__ == "__main__":
    main()
