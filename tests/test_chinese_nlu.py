"""Chinese conversation NLU, sentiment and texts without the stack (issue 16): the gate's verdicts
on Chinese messages (vocabulary learnt from data/nlu.yml as ConversationGate.train does), the
Chinese anger cues and their effect on the real policy, and the bot's texts in both languages.
The same behaviour through real Rasa is in tests/test_chinese_e2e.py."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actions.policy import FAQ, REQUEST_HUMAN, Candidate, Signals, Thresholds, decide, sensitive_topic
from core.settings import Business, business_from, load_settings
from core.texts import NOTICES, describe_wait, notice
from nlu.conversation import Vocabulary, judge, tokens
from nlu.scorer import SentimentScorer
from nlu.sentiment_zh import find_cues_zh

NLU = Path(__file__).resolve().parents[1] / "data" / "nlu.yml"
TH = Thresholds(faq_threshold=0.55, clarify_margin=0.03, clarify_floor=0.45, sentiment_threshold=-0.5, strong_negative=-0.8,
                frustration_threshold=2.0, max_misses=2)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    blocks = yaml.safe_load(NLU.read_text(encoding="utf-8"))["nlu"]
    return Vocabulary({w for b in blocks for line in b["examples"].splitlines() for w in tokens(line.strip().lstrip("- "))})


@pytest.fixture(scope="module")
def scorer() -> SentimentScorer:
    return SentimentScorer(head_path=None)


def test_chinese_is_tokenised_per_character() -> None:
    assert tokens("hi 你好呀！") == ["hi", "你", "好", "呀"]


@pytest.mark.parametrize("text,intent", [
    ("您好，在吗？", "greet"), ("哈喽哈喽", "greet"), ("谢谢啦！", "thank"), ("好的好的", "affirm"), ("不用了，谢谢", "deny"),
    ("拜拜～", "goodbye"), ("你是机器人吗？", "bot_challenge"), ("hi 你好呀", "greet"),
])
def test_chinese_conversation_only_is_kept(vocabulary: Vocabulary, text: str, intent: str) -> None:
    assert judge(text, intent, vocabulary).keep, text


@pytest.mark.parametrize("text,intent", [
    ("你好，我的快递到哪了", "greet"), ("谢谢，那运费怎么算？", "thank"), ("好的，怎么退货", "affirm"), ("不是，我要改地址", "deny"),
])
def test_chinese_content_goes_to_the_knowledge_base(vocabulary: Vocabulary, text: str, intent: str) -> None:
    verdict = judge(text, intent, vocabulary)
    assert not verdict.keep and verdict.unknown, text


@pytest.mark.parametrize("text", ["转人工", "人工客服", "我要找真人客服", "帮我接一下人工", "能不能转人工客服", "叫你们客服来"])
def test_chinese_requests_for_a_person(vocabulary: Vocabulary, text: str) -> None:
    assert judge(text, REQUEST_HUMAN, vocabulary).keep, text


@pytest.mark.parametrize("text", ["客服电话是多少", "人工客服几点上班", "我想退货", "你们的客服邮箱"])
def test_chinese_questions_about_people_are_not_requests(vocabulary: Vocabulary, text: str) -> None:
    assert not judge(text, REQUEST_HUMAN, vocabulary).keep, text


def test_chinese_anger_cues() -> None:
    cues = find_cues_zh("你们太差了！！！骗子，赶紧退钱！！！")
    assert cues.exclamations == 3 and {"太差了", "骗子", "赶紧退钱"} <= set(cues.frustration)
    assert find_cues_zh("什么垃圾客服").profanity == 1
    assert find_cues_zh("答非所问，我问的是运费").correction
    assert find_cues_zh("我真的很生气").displeasure
    assert find_cues_zh("？？？").exclamations == 3  # repeated full-width question marks
    calm = find_cues_zh("请问退钱的流程是怎样的？")  # the word 退钱 in a calm question
    assert calm.names() == []


def test_angry_chinese_customer_escalates_and_calm_one_is_answered(scorer: SentimentScorer) -> None:
    track = (Candidate("orders-track-order", 0.82, "怎么查看我的订单物流？"),)
    angry = scorer.score("你们太差了！！！骗子，赶紧退钱！！！")
    assert angry.label == "negative" and angry.score <= TH.strong_negative
    decision = decide(Signals(route=FAQ, text="你们太差了！！！骗子，赶紧退钱！！！", sentiment=angry.score,
                              cues=tuple(angry.cues.names()), matches=track), TH)
    assert decision.action == "escalate" and decision.reason == "negative_sentiment", decision
    calm = scorer.score("我的快递到哪了？")
    assert calm.label == "neutral"
    answered = decide(Signals(route=FAQ, text="我的快递到哪了？", sentiment=calm.score, cues=tuple(calm.cues.names()),
                              matches=track), TH)
    assert answered.action == "answer", answered


def test_chinese_sensitive_topics() -> None:
    assert sensitive_topic("再不处理我就找律师起诉你们")[0] == "legal"
    assert sensitive_topic("我的信用卡被人盗刷了")[0] == "fraud"
    assert sensitive_topic("充电器用的时候冒烟了")[0] == "safety"
    assert sensitive_topic("请问怎么查物流") is None


def test_business_texts_in_both_languages() -> None:
    business = load_settings().business  # the demo's tandem.yml
    assert "北风优品" in business.text("greeting", "zh") and "Northwind Goods" in business.text("greeting")
    assert business.text("handoff", "zh") != business.text("handoff")  # from core/texts.py's defaults
    neutral = Business(name="Maple Clinic")
    assert neutral.text("greeting", "zh").startswith("您好！我是Maple Clinic的智能助手")
    configured = business_from({"name": "Acme", "zh": {"name": "艾克美", "refusal": "{name}暂时无法回答。"}})
    assert configured.text("refusal", "zh") == "艾克美暂时无法回答。" and configured.text("name", "zh") == "艾克美"
    with pytest.raises(ValueError, match="unknown business.zh"):
        business_from({"zh": {"greting": "x"}})


def test_every_notice_has_both_languages() -> None:
    assert all(set(v) == {"en", "zh"} for v in NOTICES.values())
    assert notice("queued", "zh", position=2, wait="") .startswith("您目前排在人工客服队列第 2 位")
    assert notice("queued", "fr", position=2, wait="").startswith("You're number 2")  # anything else: English
    assert describe_wait(30, "zh") == "不到 1 分钟" and describe_wait(240, "en") == "about 4 minutes"
