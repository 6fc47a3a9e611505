"""MiniLM through ONNX Runtime (knowledge/minilm_onnx.py): built by ./tandem, the numpy model's
vectors, and the runtime the running Rasa embeds messages with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge import minilm_onnx
from knowledge.minilm_numpy import NumpyMiniLM
from knowledge.models import MINILM, message_encoder
from knowledge.base import load_faq_file
from tests.conftest import Stack

ROOT = Path(__file__).resolve().parents[1]


def test_this_environment_has_the_build() -> None:
    """./tandem builds it after installing; without it Rasa silently pays twice the CPU."""
    assert minilm_onnx.available(), f"missing {minilm_onnx.graph_path()}: python -m knowledge.minilm_onnx build"
    assert isinstance(message_encoder(MINILM), minilm_onnx.OnnxMiniLM)


def test_same_vectors_as_the_numpy_model() -> None:
    texts = [t for entry in load_faq_file(ROOT / "data" / "faq.yml")[:40] for t in [entry["question"], *(entry.get("paraphrases") or [])]]
    texts += ["", "?", "hi", "ok " * 400, "Где мой заказ?", "订单在哪里", "emoji 📦📦 and CAPS!!!"]
    ours, expected = minilm_onnx.OnnxMiniLM(), NumpyMiniLM().encode(texts)
    for batch_size in (1, 7, 64):  # one message, uneven batches, padding to the longest text
        got = ours.encode(texts, batch_size=batch_size)
        assert got.shape == (len(texts), 384) and got.dtype == np.float32
        assert np.abs(got - expected).max() < minilm_onnx.MAX_ABS_DIFF
    assert ours.encode([]).shape == (0, 384)


def test_a_graph_that_gives_other_vectors_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build() checks the export against the numpy model and keeps nothing when they differ."""
    real = NumpyMiniLM.encode
    monkeypatch.setattr(NumpyMiniLM, "encode", lambda self, texts, **kw: real(self, texts, **kw)[:, ::-1].copy())
    with pytest.raises(RuntimeError, match="differs from the numpy model"):
        minilm_onnx.build(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_running_rasa_embeds_with_onnx_runtime(stack: Stack) -> None:
    customer = stack.new_conversation()
    assert customer.say("how can I track my order?")["replies"]
    process = stack.supervisor.service("rasa").process
    assert process is not None
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    assert "onnxruntime" in maps and "torch" not in maps
