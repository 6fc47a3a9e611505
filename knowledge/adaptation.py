"""The knowledge base's own encoder: MiniLM fine-tuned on its paraphrases, in the background (issue 10).

Why: the shipped MiniLM was trained on the web's sentence pairs, not on what sets one business's
entries apart. Its paraphrases are labelled examples of exactly that. Fine-tuning the six encoder
layers on them (supervised contrastive loss: texts of one entry together, of others apart; the
word embeddings stay frozen) tightens each entry's wordings and pushes off-topic text away.
Measured (docs/evaluation.md, "The knowledge base's own encoder"; benchmarks/adaptation_options.py).

How it runs, never blocking a live edit:
* The web process (the one that self-calibrates) starts `python -m knowledge.adaptation` as a child
  process when the knowledge base changed and has been quiet for `adapt_delay_s`, at most once per
  `adapt_interval_s`: torch lives only in that short-lived process. The child claims the revision
  in the store (several web instances: one trains), trains on the published texts of that revision
  minus a held-out slice (`HOLDOUT`). With `WITHHELD_MIN_ENTRIES` entries or more it first
  trains a probe that also never sees `WITHHELD` of the entries: scored on those, it tells how the
  adapted encoder treats a topic the knowledge base does not cover (an encoder trained on an
  entry has learnt it as a cluster, so leaving it out afterwards measures nothing). The probe
  and the shipped encoder are compared on the held-out slice and the withheld topics
  (`validate`: held-out paraphrases answered right at each one's self-calibrated threshold plus
  left-out topics refused there); if the probe wins, the encoder that ships is trained on every
  entry and keeps the probe's "topic floor" (knowledge/selfcalibration.py). It stores the adapted
  layers (float16) with the keys of the texts it trained on (table kb_adaptations) only when the
  adapted one wins; otherwise a row that says the shipped encoder stays. Then it exits.
* Every answering process sees the new row (one cheap query), loads it (`AdaptedMiniLM`: the
  shipped weights, memory-mapped, with the adapted layers over them), re-embeds the knowledge base
  into a new index in a background thread and swaps encoder and index at once; edits made
  meanwhile are applied to the new index before the swap. Until then it answers as before.
* The self-calibration then holds out only the texts the encoder did not train on: a paraphrase
  it learned scores near 1 with its own entry, and thresholds from those would be too strict.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from knowledge.minilm_numpy import NAME as MINILM, NumpyMiniLM
from knowledge.selfcalibration import Calibration, topic_floor_of

if TYPE_CHECKING:
    from knowledge.store import FaqStore

log = logging.getLogger(__name__)

HOLDOUT = 0.15  # share of each entry's paraphrases (entries with >= 3 texts) kept out of training, for calibration
HELD_OUT_MIN = 20  # ... and at least this many in all where the entries allow (what self-calibration needs)
ENTRIES_PER_BATCH = 16
TEXTS_PER_ENTRY = 4
TEMPERATURE = 0.05
LEARNING_RATE = 3e-5
MAX_SEQ_LENGTH = 64  # customers' questions and paraphrases are short; longer texts are truncated for training only
MIN_TEXTS = 20  # paraphrases beyond one per entry needed to learn anything (as the head's rule)
MAX_TEXTS = 20_000
MESSAGE_TEXTS = 4  # encodes of up to this many texts (a message, a preview) run on ONNX Runtime
WITHHELD = 0.15  # share of the entries the probe never trains on (the uncovered topics it is scored on) ...
WITHHELD_MIN = 3  # ... and at least this many
WITHHELD_MIN_ENTRIES = 10  # a probe only for a knowledge base with this many entries (as selfcalibration.TOPIC_MIN_ENTRIES)


def text_key(faq_id: str, text: str) -> str:
    """A stable key of one entry text: which texts an adapted encoder was trained on."""
    return hashlib.sha1(f"{faq_id}\x00{text}".encode("utf-8")).hexdigest()[:16]


def worth_training(groups: Sequence[tuple[str, Sequence[str]]]) -> bool:
    """Enough paraphrases to learn from, and small enough to train in minutes."""
    texts = sum(len(t) for _, t in groups)
    return len(groups) >= 2 and texts - len(groups) >= MIN_TEXTS and texts <= MAX_TEXTS


@dataclass(frozen=True)
class Adaptation:
    """One adapted encoder as stored (without its weights)."""

    id: int
    revision: int  # the knowledge base revision it was trained on
    base: str  # the encoder it adapts (MiniLM)
    created_at: float
    seconds: float
    steps: int
    texts: int  # texts trained on
    held_out: int  # texts kept out for calibration
    trained: frozenset[str] = field(default_factory=frozenset, repr=False)  # text_key()s trained on
    accepted: bool = True  # False: it did worse than the shipped encoder on the held-out texts (no weights stored)
    validation: dict[str, float] = field(default_factory=dict)  # validation_score() of "shipped" and "adapted"
    withheld: int = 0  # entries the probe never trained on
    left_out: tuple[float, ...] = field(default=(), repr=False)  # the probe's scores of those topics (selfcalibration.left_out_top)

    @property
    def topic_floor(self) -> float:
        """The score refusing 95 % of the probe's withheld topics (0: no probe), from its scores."""
        return topic_floor_of(np.array(self.left_out)) or 0.0

    @property
    def name(self) -> str:
        """The encoder's name: index files, calibrations and heads record it (knowledge/models.py)."""
        return f"{self.base}+kb{self.id}"

    def meta_json(self) -> str:
        data = asdict(self)
        data["trained"] = sorted(self.trained)
        return json.dumps(data)

    @classmethod
    def from_meta(cls, row_id: int, text: str) -> "Adaptation":
        data = json.loads(text)
        data["id"] = row_id
        data["trained"] = frozenset(data.get("trained", ()))
        data["left_out"] = tuple(data.get("left_out", ()))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def summary(self) -> str:
        scores = f"{self.validation.get('adapted', 0):.2f} vs {self.validation.get('shipped', 0):.2f} for the shipped one"
        if not self.accepted:
            return (f"an encoder adapted to revision {self.revision} did worse on the entries' held-out paraphrases "
                    f"({scores}), so the shipped encoder stays")
        probe = f"; uncovered topics measured on {self.withheld} entries a probe never learnt" if self.withheld else ""
        return (f"encoder adapted to this knowledge base (revision {self.revision}: {self.texts} texts, "
                f"{self.steps} steps, {self.seconds:.0f} s; held-out paraphrases and left-out topics {scores}{probe})")


def validation_score(cal: "Calibration") -> float:
    """How well an encoder serves the knowledge base, from its own texts only: held-out paraphrases
    answered right at its self-calibrated threshold plus left-out entries' questions refused there."""
    return float(cal.heldout_answered + cal.siblings_refused)


def pack(weights: dict[str, np.ndarray]) -> bytes:
    """The adapted tensors as one float16 .npz (6 layers of MiniLM: ~21 MB)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v, dtype=np.float16) for k, v in weights.items()})
    return buffer.getvalue()


def unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: np.ascontiguousarray(data[k], dtype=np.float32) for k in data.files}


class AdaptedMiniLM(NumpyMiniLM):
    """The numpy MiniLM (same tokenizer, same forward pass) with the adapted layers over its weights.

    A customer's message (a few texts, one worker) goes through ONNX Runtime with the same layers
    put over the exported graph's (knowledge/minilm_onnx.py): the same vectors within float
    rounding at about half the CPU, for the action server, which embeds every message itself once
    this encoder is in force. Index builds stay on numpy and every core."""

    def __init__(self, adaptation: Adaptation, weights: dict[str, np.ndarray], path: Path | None = None) -> None:
        super().__init__(path)
        self.adaptation = adaptation
        self.name = adaptation.name
        self._overrides = weights
        self._layers = weights
        self._onnx: object | None = None
        self._onnx_tried = False

    def _message_runtime(self) -> object | None:
        with self._lock:
            if not self._onnx_tried:
                self._onnx_tried = True
                from knowledge import minilm_onnx

                if minilm_onnx.available():
                    try:
                        runtime = minilm_onnx.OnnxMiniLM(overrides=self._layers)
                        runtime.encode(["warm up"])
                        self._onnx = runtime
                    except Exception as exc:  # noqa: BLE001 - numpy gives the same vectors
                        log.warning("adapted encoder on ONNX Runtime unavailable (%s): messages use numpy", exc)
        return self._onnx

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, workers: int = 1) -> np.ndarray:
        runtime = self._message_runtime() if 0 < len(texts) <= MESSAGE_TEXTS and workers <= 1 else None
        if runtime is not None:
            return runtime.encode(texts)  # type: ignore[attr-defined]
        return super().encode(texts, batch_size, progress, workers)

    def _load(self):  # type: ignore[no-untyped-def]
        weights, tokenizer = super()._load()
        if self._overrides:
            with self._lock:
                if self._overrides:
                    merged = dict(weights)
                    unknown = set(self._overrides) - set(merged)
                    if unknown:
                        raise ValueError(f"adapted weights name tensors MiniLM does not have: {sorted(unknown)[:3]}")
                    merged.update(self._overrides)
                    self._weights, self._overrides = merged, {}
        return self._weights, tokenizer


# -- training (the child process; torch is imported only here) ---------------------------------
def split(groups: Sequence[tuple[str, Sequence[str]]], holdout: float = HOLDOUT, seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(trained, held out) (faq_id, text) pairs. `holdout` of each entry's paraphrases (entries with
    >= 3 texts; never the question, always 2 texts left to learn from) are kept out, and more in a
    small knowledge base, so the calibration has at least HELD_OUT_MIN wordings the encoder never saw."""
    rng = random.Random(seed)
    rows = [(faq_id, list(dict.fromkeys(texts))) for faq_id, texts in groups]
    eligible = sum(1 for _, texts in rows if len(texts) >= 3)
    floor = -(-HELD_OUT_MIN // eligible) if eligible else 0
    train: list[tuple[str, str]] = []
    held: list[tuple[str, str]] = []
    for faq_id, texts in rows:
        count = min(len(texts) - 2, max(int(round(holdout * len(texts))), floor, 1)) if len(texts) >= 3 and holdout > 0 else 0
        out = set(rng.sample(range(1, len(texts)), count)) if count > 0 else set()
        for i, text in enumerate(texts):
            (held if i in out else train).append((faq_id, text))
    return train, held


def withhold(groups: Sequence[tuple[str, Sequence[str]]], share: float = WITHHELD, seed: int = 0) -> set[str]:
    """The entries the probe never trains on: `share` of them (at least WITHHELD_MIN), none in a
    knowledge base of fewer than WITHHELD_MIN_ENTRIES entries."""
    ids = sorted({faq_id for faq_id, _ in groups})
    if len(ids) < WITHHELD_MIN_ENTRIES:
        return set()
    return set(random.Random(seed).sample(ids, max(WITHHELD_MIN, int(round(share * len(ids))))))


def train(pairs: Sequence[tuple[str, str]], steps: int, seed: int = 0, threads: int = 1,
          progress: Callable[[int, int, float], None] | None = None) -> tuple[dict[str, np.ndarray], list[float]]:
    """Fine-tune MiniLM's encoder layers on (faq_id, text) pairs; returns the new layer tensors and
    the loss per step. Batches hold ENTRIES_PER_BATCH entries x TEXTS_PER_ENTRY of their texts."""
    import torch
    from sentence_transformers import SentenceTransformer

    from knowledge.embedder import model_path

    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    model = SentenceTransformer(str(model_path()), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    bert = model[0].auto_model
    for p in bert.embeddings.parameters():
        p.requires_grad_(False)
    by_entry: dict[str, list[str]] = {}
    for faq_id, text in pairs:
        by_entry.setdefault(faq_id, []).append(text)
    multi = [e for e, texts in by_entry.items() if len(texts) >= 2]
    if len(multi) < 2:
        raise ValueError("need at least two entries with two texts each")
    rng = random.Random(seed)
    params = [p for p in bert.encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.01)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps))
    model.train()
    losses: list[float] = []
    for step in range(steps):
        labels: list[int] = []
        batch: list[str] = []
        for j, entry in enumerate(rng.sample(multi, min(ENTRIES_PER_BATCH, len(multi)))):
            chosen = rng.sample(by_entry[entry], min(TEXTS_PER_ENTRY, len(by_entry[entry])))
            batch += chosen
            labels += [j] * len(chosen)
        z = torch.nn.functional.normalize(model(model.tokenize(batch))["sentence_embedding"], dim=1)
        n = len(batch)
        eye = torch.eye(n, dtype=torch.bool)
        lab = torch.tensor(labels)
        positive = (lab[:, None] == lab[None, :]) & ~eye
        logits = (z @ z.T / TEMPERATURE).masked_fill(eye, -1e9)
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        loss = (-(log_prob * positive).sum(1) / positive.sum(1).clamp(min=1))[positive.sum(1) > 0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.item()))
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    state = {f"encoder.{k}": v.detach().cpu().numpy() for k, v in bert.encoder.state_dict().items()}
    return state, losses


def run_job(store: "FaqStore", revision: int, steps: int, threads: int = 1) -> Adaptation | None:
    """Train for `revision` of the store's published entries and save the result (the child's work).
    None: another process claimed the revision, or the knowledge base is not worth adapting."""
    if not store.claim_adaptation(revision):
        log.info("revision %d is already being adapted elsewhere", revision)
        return None
    live = [f for f in store.iter_all() if f.status == "published" and not f.deleted]
    groups = [(f.id, f.texts()) for f in live]
    if not worth_training(groups):
        log.info("revision %d: too few paraphrases (or too many texts) to adapt the encoder", revision)
        return None
    trained, held = split(groups)
    withheld = withhold(groups)
    started = time.monotonic()
    last = [0.0]

    def progress_of(stage: str) -> Callable[[int, int, float], None]:
        def progress(done: int, total: int, loss: float) -> None:
            if time.monotonic() - last[0] >= 10 or done == total:
                last[0] = time.monotonic()
                print(f"adaptation of revision {revision} ({stage}): step {done}/{total}, loss {loss:.3f}", file=sys.stderr, flush=True)
        return progress

    keys = frozenset(text_key(f, t) for f, t in trained)
    candidate = Adaptation(0, revision, MINILM, time.time(), 0.0, steps, len(trained), len(held), keys, withheld=len(withheld))
    if withheld:
        # The probe: the same training without the withheld entries, scored on them as uncovered topics.
        probe_pairs = [(f, t) for f, t in trained if f not in withheld]
        probe_weights, losses = train(probe_pairs, steps, threads=threads, progress=progress_of("probe"))
        probe = AdaptedMiniLM(replace(candidate, trained=frozenset(text_key(f, t) for f, t in probe_pairs)), probe_weights)
        scores, calibrations = validate(probe_pairs, [*held, *((f, t) for f, t in trained if f in withheld)], probe, revision,
                                        threads, withheld=withheld)
    else:
        weights, losses = train(trained, steps, threads=threads, progress=progress_of("training"))
        scores, calibrations = validate(trained, held, AdaptedMiniLM(candidate, weights), revision, threads)
    accepted = scores["adapted"] > scores["shipped"]
    final: Calibration | None = calibrations["adapted"] if accepted and not withheld else None
    left_out: tuple[float, ...] = ()
    if accepted and withheld:  # the encoder that ships learns every entry; its thresholds keep the probe's scores
        left_out = tuple(round(float(x), 4) for x in probe_left_out(probe, probe_pairs, trained, held, withheld, threads))
        weights, losses = train(trained, steps, threads=threads, progress=progress_of("every entry"))
        final = calibrate(trained, held, AdaptedMiniLM(candidate, weights), revision, threads, np.array(left_out))
    adaptation = replace(candidate, seconds=round(time.monotonic() - started, 1), accepted=accepted, validation=scores,
                         left_out=left_out)
    row_id = store.save_adaptation(revision, adaptation.meta_json(), pack(weights) if accepted else b"")
    if final is not None:  # its thresholds are ready the moment a process swaps it in (no gap on tandem.yml's)
        cal = replace(final, encoder=Adaptation.from_meta(row_id, adaptation.meta_json()).name)
        store.save_calibration(revision, cal.to_json())
    log.info("adaptation %d of revision %d stored (%s): %d texts, %d entries withheld from the probe, loss %.3f -> %.3f, "
             "validation %s, topic floor %.2f, %.0f s", row_id, revision, "accepted" if accepted else "rejected", len(trained),
             len(withheld), float(np.mean(losses[:10])), float(np.mean(losses[-10:])), scores, adaptation.topic_floor, adaptation.seconds)
    return Adaptation.from_meta(row_id, adaptation.meta_json())


def validate(trained: Sequence[tuple[str, str]], held: Sequence[tuple[str, str]], adapted: NumpyMiniLM,
             revision: int, threads: int = 1, withheld: set[str] | frozenset[str] = frozenset(),
             ) -> tuple[dict[str, float], dict[str, Calibration]]:
    """validation_score() of the shipped and the adapted encoder, on the held-out texts only, and
    each one's calibration: the adapted one is used only where it serves this knowledge base
    better (measured on BANKING77 it did not: docs/evaluation.md). With `withheld` entries (their
    texts in `held`, never trained on), the left-out topics are those, for both encoders."""
    from knowledge.selfcalibration import compute, offtopic_questions

    pairs = [*trained, *held]
    texts, owners = [t for _, t in pairs], [f for f, _ in pairs]
    unseen = np.array([False] * len(trained) + [True] * len(held))
    # Left-out topics: the withheld entries, for both encoders alike; without a probe, none can be
    # measured for the adapted one (it learnt them all), so both report the entries' questions.
    unlearnt = np.array([f in withheld for f in owners])
    offtopic = offtopic_questions()
    scores: dict[str, float] = {}
    calibrations: dict[str, Calibration] = {}
    for label, encoder in (("shipped", NumpyMiniLM()), ("adapted", adapted)):
        vectors = encoder.encode(texts, workers=max(1, threads))
        calibrations[label] = compute(vectors, owners, encoder.encode(offtopic), revision, unseen=unseen, encoder=encoder.name,
                                      unlearnt=unlearnt)
        scores[label] = round(validation_score(calibrations[label]), 4)
    return scores, calibrations


def probe_left_out(probe: NumpyMiniLM, probe_pairs: Sequence[tuple[str, str]], trained: Sequence[tuple[str, str]],
                   held: Sequence[tuple[str, str]], withheld: set[str], threads: int = 1, sample: int = 1000) -> np.ndarray:
    """The probe's left-out scores of (a sample of) the withheld entries' texts: kept with the
    adaptation, so every later calibration reports uncovered topics as the probe measured them."""
    from knowledge.selfcalibration import left_out_top

    pairs = [*probe_pairs, *((f, t) for f, t in trained if f in withheld), *held]
    owners = [f for f, _ in pairs]
    rows = np.flatnonzero(np.array([f in withheld for f in owners]))
    rows = np.random.default_rng(0).choice(rows, size=min(sample, len(rows)), replace=False) if len(rows) else rows
    return left_out_top(probe.encode([t for _, t in pairs], workers=max(1, threads)), owners, rows)


def calibrate(trained: Sequence[tuple[str, str]], held: Sequence[tuple[str, str]], adapted: NumpyMiniLM, revision: int,
              threads: int = 1, left_out: np.ndarray | None = None) -> Calibration:
    """The adapted encoder's own calibration on its held-out slice, with the probe's scores of the
    withheld topics (the share refused and the topic floor)."""
    from knowledge.selfcalibration import compute, offtopic_questions

    pairs = [*trained, *held]
    vectors = adapted.encode([t for _, t in pairs], workers=max(1, threads))
    unseen = np.array([False] * len(trained) + [True] * len(held))
    return compute(vectors, [f for f, _ in pairs], adapted.encode(offtopic_questions()), revision, unseen=unseen,
                   encoder=adapted.name, unlearnt=np.zeros(len(pairs), dtype=bool), left_out=left_out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Adapt MiniLM to the knowledge base's paraphrases (a child of the web process).")
    parser.add_argument("--revision", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from core.db import sync_engine
    from core.settings import load_settings
    from knowledge.store import FaqStore

    store = FaqStore(sync_engine(load_settings()))
    run_job(store, args.revision, args.steps, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
