"""Rasa's own costs that docs/performance.md section 5 quotes, each against its baseline in one run.

- schema check of an action-server response: jsonschema.validate vs server.rasa_server.check_schemas_once;
- MiniLM on one short message: x @ W.T vs W @ x.T (knowledge.minilm_numpy.SHORT_ROWS);
- MiniLM on one short message through ONNX Runtime (knowledge/minilm_onnx.py, what Rasa runs) vs
  numpy, and an int8 build of the same graph (not shipped): its CPU and how far its vectors move
  (cosine to float32 over the demo FAQ's texts);
- one message's tracker round trip on SQLite (retrieve, add a turn's events, save): Rasa's
  SQLTrackerStore vs server.rasa_tracker_store.SQLiteTrackerStore, wall and CPU (a commit's sync is
  wall time), in conversations of 10 turns;
- per Rasa model given (e.g. a DIET model and the n-gram one): Agent.load seconds and parse CPU per message.

    $VENV/bin/python benchmarks/rasa_costs.py [--models A.tar.gz B.tar.gz] [--messages 100]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, markdown_table, today  # noqa: E402

TEXTS = ("how can I track my order?", "hi there", "my parcel never arrived and I'm annoyed", "can I pay with paypal", "thanks!")


def cpu_ms(fn: object, repeat: int) -> float:
    started = time.process_time()
    for _ in range(repeat):
        fn()  # type: ignore[operator]
    return (time.process_time() - started) / repeat * 1000


def schema_rows() -> list[list[str]]:
    import jsonschema
    from rasa.core.actions.action import RemoteAction

    from server.rasa_server import check_schemas_once

    schema = RemoteAction.action_response_format_spec()
    result = {"events": [{"event": "slot", "name": "x", "value": 1, "timestamp": None}] * 3, "responses": [{"text": "hi"}]}
    original = jsonschema.validate
    before = cpu_ms(lambda: original(result, schema), 20)
    check_schemas_once()
    try:
        after = cpu_ms(lambda: jsonschema.validate(result, schema), 200)
    finally:
        jsonschema.validate = original
    return [["action response schema check", f"{before:.1f}", f"{after:.1f}", f"{after / before:.2f}"]]


def minilm_rows() -> list[list[str]]:
    from threadpoolctl import threadpool_limits

    import knowledge.minilm_numpy as minilm
    from knowledge.models import encoder

    model = encoder(minilm.NAME)
    shipped = minilm.SHORT_ROWS
    with threadpool_limits(1):
        model.encode(list(TEXTS[:1]))
        minilm.SHORT_ROWS = 0
        before = cpu_ms(lambda: [model.encode([t]) for t in TEXTS], 20) / len(TEXTS)
        minilm.SHORT_ROWS = shipped
        after = cpu_ms(lambda: [model.encode([t]) for t in TEXTS], 20) / len(TEXTS)
    return [["MiniLM, one short message", f"{before:.1f}", f"{after:.1f}", f"{after / before:.2f}"]]


def onnx_rows() -> list[list[str]]:
    import tempfile

    import numpy as np
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import knowledge.minilm_numpy as minilm
    from knowledge import minilm_onnx
    from knowledge.base import load_faq_file
    from knowledge.models import encoder

    from threadpoolctl import threadpool_limits

    numpy_model, onnx_model = encoder(minilm.NAME), minilm_onnx.OnnxMiniLM()
    for model in (numpy_model, onnx_model):
        model.encode(list(TEXTS))
    with threadpool_limits(1):  # as Rasa runs it (OPENBLAS_NUM_THREADS=1); ONNX Runtime uses one thread too
        numpy_ms = cpu_ms(lambda: [numpy_model.encode([t]) for t in TEXTS], 20) / len(TEXTS)
    onnx_ms = cpu_ms(lambda: [onnx_model.encode([t]) for t in TEXTS], 20) / len(TEXTS)
    rows = [["MiniLM, one short message: numpy -> ONNX Runtime (shipped in Rasa)", f"{numpy_ms:.1f}", f"{onnx_ms:.1f}", f"{onnx_ms / numpy_ms:.2f}"]]
    faq = [t for e in load_faq_file(ROOT / "data" / "faq.yml") for t in [e["question"], *(e.get("paraphrases") or [])]]
    with tempfile.TemporaryDirectory() as tmp:
        int8 = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(minilm_onnx.graph_path()), str(int8), weight_type=QuantType.QInt8)
        int8_model = minilm_onnx.OnnxMiniLM(int8)
        int8_model.encode(list(TEXTS))
        int8_ms = cpu_ms(lambda: [int8_model.encode([t]) for t in TEXTS], 20) / len(TEXTS)
        cosine = (int8_model.encode(faq) * onnx_model.encode(faq)).sum(axis=1)
    rows.append([f"MiniLM, one short message: ONNX float32 -> int8 (not shipped; cosine to float32 median "
                 f"{np.median(cosine):.3f}, min {cosine.min():.3f})", f"{onnx_ms:.1f}", f"{int8_ms:.1f}", f"{int8_ms / onnx_ms:.2f}"])
    return rows


def adapted_rows() -> list[list[str]]:
    """The knowledge base's own encoder (knowledge/adaptation.py) on one message in the action server:
    numpy vs ONNX Runtime with the adapted layers put over the graph's (here: the shipped layers, moved)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from knowledge.adaptation import Adaptation, AdaptedMiniLM
    from knowledge.minilm_numpy import NumpyMiniLM

    weights, _ = NumpyMiniLM()._load()  # noqa: SLF001
    rng = np.random.default_rng(0)
    layers = {k: (np.asarray(v) * (1 + 0.05 * rng.standard_normal(np.shape(v)))).astype(np.float32)
              for k, v in weights.items() if k.startswith("encoder.")}
    found = Adaptation(1, 1, "all-MiniLM-L6-v2", 0.0, 0.0, 0, 0, 0)
    on_numpy, on_onnx = AdaptedMiniLM(found, layers), AdaptedMiniLM(found, layers)
    on_numpy._onnx_tried = True  # noqa: SLF001 - numpy only, as before the message runtime
    for model in (on_numpy, on_onnx):
        model.encode(list(TEXTS)[:1])
    with threadpool_limits(1):
        numpy_ms = cpu_ms(lambda: [on_numpy.encode([t]) for t in TEXTS], 20) / len(TEXTS)
    onnx_ms = cpu_ms(lambda: [on_onnx.encode([t]) for t in TEXTS], 20) / len(TEXTS)
    return [["adapted MiniLM, one short message (action server): numpy -> ONNX Runtime with the adapted layers",
             f"{numpy_ms:.1f}", f"{onnx_ms:.1f}", f"{onnx_ms / numpy_ms:.2f}"]]


def tracker_rows(conversations: int = 20, turns: int = 10) -> list[list[str]]:
    import tempfile

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

    from server.rasa_tracker_store import SQLiteTrackerStore

    domain = Domain.empty()
    parse = {"intent": {"name": "nlu_fallback", "confidence": 0.4}, "entities": [], "text_embedding": {"f32": "A" * 2048}}

    async def run(store: SQLTrackerStore) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for turn in range(turns):
            for c in range(conversations):
                tracker = await store.get_or_create_tracker(f"c{c}")
                tracker.update(UserUttered(f"question {turn} of conversation {c}", parse_data={**parse, "text": "q"}))
                tracker.update(ActionExecuted("action_answer_faq"))
                tracker.update(BotUttered("an answer", {"custom": {"decision": "answer"}}))
                tracker.update(ActionExecuted("action_listen"))
                await store.save(tracker)
        n = conversations * turns
        return (time.perf_counter() - wall) / n * 1000, (time.process_time() - cpu) / n * 1000

    with tempfile.TemporaryDirectory() as tmp:
        before = asyncio.run(run(SQLTrackerStore(domain, dialect="sqlite", db=f"{tmp}/rasa.db")))
        after = asyncio.run(run(SQLiteTrackerStore(domain, db=f"{tmp}/tandem.db")))
    return [[f"tracker round trip, {label}", f"{b:.2f}", f"{a:.2f}", f"{a / b:.2f}"]
            for label, b, a in (("wall", before[0], after[0]), ("CPU", before[1], after[1]))]


def model_row(path: Path, messages: int) -> list[str]:
    from rasa.core.agent import Agent

    started = time.monotonic()
    agent = Agent.load(str(path))
    loaded = time.monotonic() - started
    texts = [TEXTS[i % len(TEXTS)] for i in range(messages)]

    async def parse_all() -> float:
        for text in TEXTS:
            await agent.parse_message(text)
        begun = time.process_time()
        for text in texts:
            await agent.parse_message(text)
        return (time.process_time() - begun) / len(texts) * 1000

    return [path.name, f"{loaded:.1f}", f"{asyncio.run(parse_all()):.1f}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, nargs="*", default=None, help="Rasa models (default: the latest in models/)")
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    models = args.models or sorted((ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)[-1:]
    print(f"{today()}; {machine()}\n")
    print(markdown_table(["CPU ms per call", "before", "now", "now / before"], schema_rows() + minilm_rows() + onnx_rows() + adapted_rows() + tracker_rows()))
    print()
    print(markdown_table(["Rasa model", "Agent.load s", "parse CPU ms / message"], [model_row(m, args.messages) for m in models]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
