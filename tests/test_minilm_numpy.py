"""The numpy MiniLM runtime (knowledge/minilm_numpy.py) gives sentence-transformers' vectors
without torch, and is what every process gets for the MiniLM encoder (issue 13)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from knowledge.base import load_faq_file
from knowledge.embedder import Embedder
from knowledge.minilm_numpy import NumpyMiniLM
from knowledge.models import MINILM, encoder

ROOT = Path(__file__).resolve().parents[1]
ODD = ["", "   ", "Ünïcödé ça va? 🙂", "WHERE IS MY PARCEL?!!!", "a " * 400, "order #12345-XY, paid €49.99 on 03/11",
       "我的包裹在哪里", "hi"]


@pytest.fixture(scope="module")
def torch_runtime() -> Embedder:
    return Embedder()


def test_same_vectors_as_sentence_transformers(torch_runtime: Embedder) -> None:
    faq = [t for e in load_faq_file(ROOT / "data" / "faq.yml") for t in [e["question"], *(e.get("paraphrases") or [])]][:200]
    texts = faq + ODD
    ours, theirs = NumpyMiniLM().encode(texts), torch_runtime.encode(texts)
    assert ours.shape == theirs.shape == (len(texts), 384) and ours.dtype == np.float32
    assert float(np.max(np.abs(ours - theirs))) < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # One at a time (a customer's message) equals the batch: padding is masked out.
    single = np.stack([NumpyMiniLM().encode([t])[0] for t in ODD])
    assert float(np.max(np.abs(single - ours[len(faq):]))) < 1e-5
    assert NumpyMiniLM().encode([]).shape == (0, 384)


def test_every_process_gets_the_numpy_runtime_and_no_torch() -> None:
    assert isinstance(encoder(MINILM), NumpyMiniLM)
    code = ("import sys; from knowledge.models import MINILM, encoder; v = encoder(MINILM).encode(['how do I return it']); "
            "print(v.shape, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split("\n")[-2] == "(1, 384) False False"
