"""Does Rasa 3.6's JiebaTokenizer work on this Python with the `jieba` package? (issue 16)

A standalone check, not a test: builds rasa.nlu.tokenizers.jieba_tokenizer.JiebaTokenizer the way
Rasa's graph does (`create` with a LocalModelStorage in a temporary folder, then `process`),
tokenizes the messages of data/eval/conversation_zh.yml, and also loads a user dictionary (the
`dictionary_path` option) so domain words such as 转人工 stay one token. Prints dictionary load
time, median per-message time and sample tokenizations; docs/multilingual.md records the result.

    $TANDEM_VENV/bin/python benchmarks/jieba_tokenizer_check.py
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    warnings.simplefilter("ignore")
    import jieba

    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
    from rasa.shared.nlu.constants import TEXT
    from rasa.shared.nlu.training_data.message import Message

    texts = [m["text"] for m in yaml.safe_load((ROOT / "data/eval/conversation_zh.yml").read_text(encoding="utf-8"))["messages"]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        storage = LocalModelStorage(tmp_path / "storage")
        context = ExecutionContext(GraphSchema({}), "jieba-check")
        started = time.perf_counter()
        jieba.setLogLevel(60)
        jieba.initialize()
        init_s = time.perf_counter() - started

        plain = JiebaTokenizer.create({**JiebaTokenizer.get_default_config()}, storage, Resource("plain"), context)
        timings, samples = [], []
        for text in texts:
            message = Message({TEXT: text})
            t0 = time.perf_counter()
            plain.process([message])
            timings.append(time.perf_counter() - t0)
            samples.append((text, [t.text for t in message.get("text_tokens")]))

        userdict = tmp_path / "dict"
        userdict.mkdir()
        (userdict / "shop.txt").write_text("转人工 100 v\n人工客服 100 n\n北风优品 100 nz\n", encoding="utf-8")
        custom = JiebaTokenizer.create({**JiebaTokenizer.get_default_config(), "dictionary_path": str(userdict)},
                                       storage, Resource("custom"), context)
        message = Message({TEXT: "帮我转人工，北风优品的人工客服在吗"})
        custom.process([message])
        custom_tokens = [t.text for t in message.get("text_tokens")]

    print(f"python {sys.version.split()[0]}, jieba {jieba.__version__}")
    print(f"dictionary load: {init_s:.2f} s; {len(texts)} messages, median {statistics.median(timings) * 1e6:.0f} us/message")
    for text, tokens in samples[:: max(1, len(samples) // 12)]:
        print(f"  {text!r} -> {' | '.join(tokens)}")
    print(f"  with user dictionary: {' | '.join(custom_tokens)}")
    assert all(tokens for _, tokens in samples), "a message produced no tokens"
    assert "转人工" in custom_tokens, "user dictionary not applied"
    print("OK")


if __name__ == "__main__":
    main()
