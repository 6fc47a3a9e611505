"""all-MiniLM-L6-v2 through ONNX Runtime: the same vectors as knowledge/minilm_numpy.py, for the
one message at a time that Rasa embeds.

Why (issue 13): after the other costs went, MiniLM was ~60 % of Rasa's CPU per message, and numpy
has a floor there: each matrix product is its own BLAS call over weights read from memory (4 ms
even for "hi"). ONNX Runtime runs the same float32 graph with fused kernels: 2.6 against 5.5 ms
of CPU per short message (benchmarks/rasa_costs.py), vectors equal to numpy's within float rounding
(`build` checks it). An int8 build was 2x faster again but moved the vectors (median cosine 0.97),
which would change every threshold, the sentiment head and the knowledge base's head: not used.

The graph is exported once per virtual environment from the shipped weights (`./tandem` runs
`python -m knowledge.minilm_onnx build` after installing; torch and onnx are needed only for that)
to `<venv>/tandem-models/`. It holds its own copy of the weights (~90 MB per process that loads
it), so only the process that embeds every message (Rasa, nlu/embedding.py) uses it; the others
keep the memory-mapped numpy model, whose pages every process shares. Without the file the numpy
model serves, with the same vectors.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from knowledge.minilm_numpy import DIMENSION, MAX_SEQ_LENGTH, NAME, padded

log = logging.getLogger(__name__)
FORMAT = 1  # bump when the exported graph changes: a new file name, rebuilt by ./tandem
CHECK_TEXTS = ("how can I track my order?", "hi", "my parcel hasn't arrived and I'm getting annoyed, where is it?",
               "Kann ich mit PayPal bezahlen?", "a " * 300)
MAX_ABS_DIFF = 1e-5


def graph_path() -> Path:
    """Where this virtual environment keeps the exported graph."""
    return Path(sys.prefix) / "tandem-models" / f"{NAME}-f32-v{FORMAT}.onnx"


def available() -> bool:
    if not graph_path().is_file():
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxMiniLM:
    """Encodes texts to L2-normalised float32 vectors (the interface of NumpyMiniLM.encode)."""

    name = NAME

    def __init__(self, path: Path | None = None, overrides: dict[str, np.ndarray] | None = None) -> None:
        """`overrides`: tensors by their safetensors name (an adapted encoder's layers, knowledge/adaptation.py)
        that replace the graph's own at session start; the graph file itself is never changed."""
        from knowledge.embedder import model_path

        self._graph = path or graph_path()
        self._model_dir = model_path()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._overrides = dict(overrides or {})
        self._kept: list[Any] = []  # the override buffers: ONNX Runtime reads them, they must stay alive

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self._model_dir / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_SEQ_LENGTH)
                tokenizer.no_padding()  # the file pads to 128; a batch is padded here, to its longest text
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1  # a message is small; the process has other work
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                for name, value in initializers(self._graph, self._overrides).items():
                    kept = ort.OrtValue.ortvalue_from_numpy(value)
                    self._kept.append((value, kept))
                    options.add_initializer(name, kept)
                self._session = ort.InferenceSession(str(self._graph), options, providers=["CPUExecutionProvider"])
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, workers: int = 1) -> np.ndarray:
        """`progress` and `workers` are accepted for NumpyMiniLM's callers and ignored."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch([str(t) for t in texts])
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        step = max(1, batch_size)
        for start in range(0, len(order), step):
            chosen = order[start : start + step]
            ids, mask = padded(encodings, chosen)
            out[chosen] = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out


def initializers(graph: Path, overrides: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's initializer name and value for each override. The export names biases and norms
    after the model (`model.<name>`) but stores each dense weight transposed under a generated name
    (`onnx::MatMul_N`); those are found by value, against the shipped weights."""
    if not overrides:
        return {}
    import onnx
    from onnx import numpy_helper

    from knowledge.embedder import model_path
    from knowledge.minilm_numpy import _safetensors

    shipped = _safetensors(model_path() / "model.safetensors")
    stored = {i.name: i for i in onnx.load(str(graph)).graph.initializer}
    out: dict[str, np.ndarray] = {}
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, init in stored.items():
        if not name.startswith("model."):
            by_shape.setdefault(tuple(init.dims), []).append(name)
    for key, value in overrides.items():
        value = np.ascontiguousarray(value, dtype=np.float32)
        if f"model.{key}" in stored:
            out[f"model.{key}"] = value
            continue
        transposed = np.ascontiguousarray(shipped[key].T)
        found = [n for n in by_shape.get(transposed.shape, []) if np.array_equal(numpy_helper.to_array(stored[n]), transposed)]
        if len(found) != 1:
            raise ValueError(f"{key}: {len(found)} initializers of the ONNX graph hold it")
        out[found[0]] = np.ascontiguousarray(value.T)
    return out


def build(path: Path | None = None) -> Path:
    """Export the shipped weights (BERT, mean pooling, L2 norm) to one ONNX graph; keep it only if
    it gives the numpy model's vectors. Needs torch, sentence-transformers and onnx."""
    import torch
    from sentence_transformers import SentenceTransformer

    from knowledge.embedder import model_path
    from knowledge.minilm_numpy import NumpyMiniLM

    target = path or graph_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    bert = SentenceTransformer(str(model_path()), device="cpu")[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)

    example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    partial = target.with_suffix(f".partial-{os.getpid()}")
    torch.onnx.export(Pooled(bert), example, str(partial), input_names=["input_ids", "attention_mask"],
                      output_names=["embedding"], opset_version=14, dynamo=False,
                      dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                    "embedding": {0: "batch"}})
    expected = NumpyMiniLM().encode(list(CHECK_TEXTS))
    got = OnnxMiniLM(partial).encode(list(CHECK_TEXTS), batch_size=2)
    worst = float(np.abs(got - expected).max())
    if worst > MAX_ABS_DIFF:
        partial.unlink()
        raise RuntimeError(f"the exported graph differs from the numpy model by {worst:.2e}")
    partial.replace(target)  # atomic: a process never loads half a file
    return target


def main(argv: Sequence[str]) -> int:
    if list(argv) != ["build"]:
        print("usage: python -m knowledge.minilm_onnx build", file=sys.stderr)
        return 2
    if graph_path().is_file():
        print(f"{graph_path()}: already built")
        return 0
    print(f"{build()}: built (same vectors as knowledge/minilm_numpy.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
