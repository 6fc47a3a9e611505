"""Self-calibration from the knowledge base's own texts (knowledge/selfcalibration.py, issue 10)."""
from __future__ import annotations

import numpy as np

from knowledge.scoring import MASKED
from knowledge.selfcalibration import Calibration, compute, offtopic_questions


def _kb(entries: int, per: int, spread: float, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(entries, 64))
    vectors = np.repeat(centers, per, 0) + spread * rng.normal(size=(entries * per, 64))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    off = rng.normal(size=(50, 64))
    off /= np.linalg.norm(off, axis=1, keepdims=True)
    return vectors.astype(np.float32), [f"e{i}" for i in range(entries) for _ in range(per)], off.astype(np.float32)


def test_thresholds_come_from_held_out_paraphrases_and_off_topic_text() -> None:
    vectors, owners, off = _kb(40, 5, 0.6)
    cal = compute(vectors, owners, off, revision=7)
    assert cal.usable and cal.revision == 7 and cal.entries == 40 and cal.heldout == 200
    assert cal.offtopic_refused >= 0.95  # the off-topic floor holds
    assert 0.85 <= cal.heldout_answered <= cal.heldout_top1  # ~90 % of the rightly ranked ones
    assert 0.2 <= cal.clarify_floor <= cal.faq_threshold <= 0.95
    assert "held-out paraphrases" in cal.summary and "off-topic" in cal.summary
    assert Calibration.from_json(cal.to_json()) == cal


def test_a_tighter_knowledge_base_gets_a_higher_threshold() -> None:
    # 9 entries: below TOPIC_MIN_ENTRIES, so the held-out rule alone decides
    loose = compute(*_kb(9, 20, 1.2), revision=1)
    tight = compute(*_kb(9, 20, 0.4), revision=1)
    assert tight.topic_floor == 0.0 and tight.faq_threshold > loose.faq_threshold


def test_the_threshold_is_never_stricter_than_uncovered_topics_need() -> None:
    """Far-apart entries: a left-out entry's texts score low, so the held-out rule's strictness
    (refusing 10 % of the entries' own wordings) buys nothing and the topic floor lowers it."""
    vectors, owners, off = _kb(40, 5, 0.4)
    shipped = compute(vectors, owners, off, revision=1)
    assert 0 < shipped.topic_floor and shipped.siblings_refused >= 0.95
    learnt = compute(vectors, owners, off, revision=1, unlearnt=np.zeros(len(owners), dtype=bool))
    assert learnt.topic_floor == 0.0 and learnt.faq_threshold > shipped.faq_threshold  # nothing measured: the held-out rule
    assert learnt.heldout_answered < shipped.heldout_answered
    few = compute(vectors, owners, off, revision=1, unlearnt=np.isin(owners, ["e1", "e2"]))
    assert few.topic_floor == 0.0  # two left-out topics are too few to measure


def test_left_out_scores_kept_from_a_probe_give_the_same_figures() -> None:
    """A probe's left-out scores (left_out_top), stored with the adaptation, stand in for the
    left-out entries a learnt encoder cannot measure: the same refusal rate and floor."""
    from knowledge.selfcalibration import left_out_top

    vectors, owners, off = _kb(40, 5, 0.8)
    mask = np.isin(owners, [f"e{i}" for i in range(0, 40, 4)])
    measured = compute(vectors, owners, off, revision=1, unlearnt=mask)
    kept = left_out_top(vectors, owners, np.flatnonzero(mask))
    again = compute(vectors, owners, off, revision=1, unlearnt=np.zeros(len(owners), dtype=bool), left_out=kept)
    assert measured.topic_floor > 0 and again.topic_floor == measured.topic_floor
    assert again.siblings == measured.siblings == mask.sum() and again.siblings_refused == measured.siblings_refused


def test_one_text_per_entry_cannot_calibrate_and_says_so() -> None:
    vectors, owners, off = _kb(30, 1, 0.5)
    cal = compute(vectors, owners, off, revision=3)
    assert not cal.usable and cal.heldout == 0
    assert "add paraphrases" in cal.summary


def test_the_shipped_off_topic_set_is_for_any_business() -> None:
    questions = offtopic_questions()
    assert len(questions) >= 100 and len(set(questions)) == len(questions)
    business = ("order", "refund", "account", "deliver", "appointment", "booking", "price", "invoice", "password")
    assert not [q for q in questions if any(word in q for word in business)]


def test_blended_entry_scores_match_the_index_rule(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import knowledge.scoring as scoring

    monkeypatch.setattr(scoring, "BEST_WEIGHT", 0.5)  # the measured blend, vectorised == per entry
    rng = np.random.default_rng(1)
    sizes = [1, 2, 3, 5]
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    sims = rng.uniform(-1, 1, size=(6, sum(sizes))).astype(np.float32)
    sims[0, 3] = MASKED
    matrix = scoring.entry_scores(sims, starts)
    for q in range(6):
        for j, (a, n) in enumerate(zip(starts, sizes)):
            expected = scoring.entry_score([s for s in sims[q, a : a + n] if s > MASKED + 0.5])
            assert abs(matrix[q, j] - expected) < 1e-5
    assert scoring.entry_score([0.7]) == 0.7  # one text: its cosine, the scale stays a cosine


def test_the_shipped_entry_score_is_the_best_cosine() -> None:
    """The blend favours entries with few texts (a one-line draft beat an exact match), so max ships."""
    from knowledge.scoring import entry_score, entry_scores

    assert entry_score([1.0, 0.8, 0.8]) == 1.0 and entry_score([0.99]) == 0.99
    sims = np.array([[1.0, 0.8, 0.8, 0.99]], dtype=np.float32)
    assert entry_scores(sims, np.array([0, 3])).tolist() == [[1.0, 0.9900000095367432]]
