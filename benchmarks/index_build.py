"""Index build for the demo knowledge base: embedding its 566 texts once the model is loaded (issue 13).

Times `KnowledgeBase.rebuild()` (store -> embed every published text -> FAISS -> save) over the
demo FAQ in a temporary SQLite store, after one warm-up encode so the model load is not counted,
median of `--runs`: as shipped (knowledge/models.encode_bulk: batches in one thread per core, one
BLAS thread each), and the baseline in the same run: one thread doing every batch in turn. `./tandem up` builds in its
own process before starting the servers, where all cores are free; the servers themselves run with
one BLAS thread (server/processes.py) and only rebuild on a damaged index or a change of encoder.

    $VENV/bin/python benchmarks/index_build.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table, today, write_section  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()

    import sqlalchemy as sa
    from threadpoolctl import threadpool_limits

    from core.db import metadata
    from knowledge.base import KnowledgeBase, load_faq_file
    from knowledge.store import FaqStore

    root = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="tandem-index-build-"))
    engine = sa.create_engine(f"sqlite:///{work / 'kb.db'}", future=True)
    metadata.create_all(engine, tables=[metadata.tables[t] for t in ("faqs", "faq_versions", "kb_calibration")])
    store = FaqStore(engine)
    store.upsert_many(load_faq_file(root / "data" / "faq.yml"), author="bench")
    kb = KnowledgeBase(store, work / "index", language="en")
    texts = sum(len(f.texts()) for f in store.iter_all())
    kb.embedder.encode(["warm up the model"])  # loads weights and tokenizer: not part of the build
    import knowledge.base as base

    rows = []
    cores = os.cpu_count() or 1
    shipped = base.encode_bulk
    medians = {}
    for name, bulk in (("one thread, batches in turn (baseline)", lambda e, t: e.encode(t)),
                       (f"as shipped: {cores} threads, one BLAS thread each", shipped)):
        base.encode_bulk = bulk  # type: ignore[assignment]
        times = []
        with threadpool_limits(limits=1, user_api="blas"):
            for _ in range(args.runs):
                started = time.perf_counter()
                kb.rebuild()
                times.append(time.perf_counter() - started)
        medians[name] = statistics.median(times)
        rows.append([name, f"{medians[name]:.2f}", f"{min(times):.2f}", f"{max(times):.2f}", f"{texts / medians[name]:.0f}",
                     f"{medians[name] / next(iter(medians.values())):.2f}"])
        print(rows[-1], flush=True)
    base.encode_bulk = shipped  # type: ignore[assignment]
    table = markdown_table(["embedding", "rebuild s (median)", "min", "max", "texts/s", "ratio to baseline"], rows)
    body = (f"Command: `$VENV/bin/python benchmarks/index_build.py --runs {args.runs}` ({today()}; {machine()}; load average "
            f"{os.getloadavg()[0]:.1f} at the end). The demo FAQ: {len(kb.index)} entries, {texts} texts, all-MiniLM-L6-v2 "
            f"(knowledge/minilm_numpy.py), model loaded before timing.\n\n{table}\n")
    print(body)
    if not args.no_docs:
        write_section("Index build for the demo knowledge base (benchmarks/index_build.py)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
