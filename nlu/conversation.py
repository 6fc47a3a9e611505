"""Rasa NLU component: a conversational intent only when the message is nothing but that act.

DIET trained on a handful of conversation intents (greet, thank, affirm, ...) is confident on any
text, because every text must land somewhere: "hi, my card was declined" is "greet" at 0.9. The
knowledge base, not Rasa's NLU, decides what a business covers, so this gate sends every message
that carries content beyond the conversational act to the knowledge route (`nlu_fallback`, which
action_handle_fallback decides against the live knowledge base):

- greet / goodbye / thank / affirm / deny / bot_challenge: kept only when (almost) every word of
  the message is a word of the conversation training examples (typos within one edit count).
  The vocabulary is learnt from data/nlu.yml at `rasa train`, so it names no business.
  A message that names the customer's mood ("no, that's not helpful at all", "thanks for nothing,
  useless": a frustration phrase, a correction, profanity, displeasure) is not a bare act either:
  it goes to the knowledge route, where the policy reads the mood (bot_challenge excepted: "are
  you even real?" is answered as the question it is).
- request_human: kept only when the message is a short call ("agent please") or asks for a
  person ("talk to someone", "is there a person ...", "can someone from your team help"), and
  not merely how to reach them ("what's the number to contact support" is a knowledge question).
  "I want to speak to someone about my refund" stays a request for a person.

The original intent and the reason are left in the parse data (`conversation_gate`), so the
decision's reasons show why a message was not treated as conversation. Measured by
benchmarks/conversation_nlu_eval.py (docs/evaluation.md).

config.yml, after FallbackClassifier:
    - name: nlu.conversation.ConversationGate
      max_unknown: 0          # words outside the conversation vocabulary a message may carry
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.cues import POINTING, find_cues
from nlu.sentiment_zh import find_cues_zh

FALLBACK_INTENT = "nlu_fallback"
GATE = "conversation_gate"
REQUEST_HUMAN = "request_human"
# Latin words, and each Han character on its own: Chinese has no spaces, and the conversation
# vocabulary is small, so "every character of the message is a character of the conversation
# examples" is the Chinese form of the same rule (character n-grams and jieba measured in
# docs/evaluation.md, "Conversation NLU in Chinese").
HAN_CHAR = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[a-z0-9]+(?:'[a-z]+)?|[{HAN_CHAR}]")
HAN = re.compile(rf"[{HAN_CHAR}]")
# Words that add nothing to a conversational act whatever the business ("ok, thanks then"), and
# Chinese particles and fillers ("好的呀", "谢谢啦", "亲").
FILLERS = frozenset("ok okay oh ah well then and just really very much too also".split()) | frozenset("啊呀吧呢哦噢嘛啦哈嗯哎呃的了亲喔么哇诶欸")
PERSON = re.compile(
    r"\b(humans?|persons?|people|agents?|someone|somebody|anyone|anybody|staff|representatives?|rep|operators?|"
    r"managers?|supervisors?|advis[eo]rs?|team|colleagues?|customer (service|support|care)|support team|live chat)\b",
    re.IGNORECASE,
)
_PERSON = PERSON.pattern[3:-3]  # the alternatives, for the patterns below
# A request for a person: a request verb shortly before the person ("I want to speak to someone
# about my refund", "is there a person I can chat to"), or the person asked to act ("can someone
# from your team help me"). "Someone stole my password" or "can my staff use the card" are not.
REQUEST = re.compile(
    rf"\b(talk|speak|chat|connect|transfer|put|pass|get|reach|contact|call|escalate|want|need|like|prefer|rather|there|see)\b"
    rf"(\W+\w+){{0,4}}?\W+({_PERSON})\b|\b({_PERSON})\b(\W+\w+){{0,3}}?\W+(help|call|contact|look|take over|handle|deal)\b",
    re.IGNORECASE,
)
# Asking how to reach people ("what is the number to contact customer service") is a question
# for the knowledge base, not a request to be connected now.
CONTACT_INFO = re.compile(r"\b(phone|number|e-?mail|address|hours|what time|when|open(ing)?|fee|cost|free)\b", re.IGNORECASE)
CONNECT_NOW = re.compile(r"\b(talk|speak|chat|connect|transfer|put me through|pass me)\b", re.IGNORECASE)
# The same three checks for Chinese ("转人工", "我要找真人客服", but "客服电话是多少" asks for a number).
PERSON_ZH = re.compile(r"人工客服|人工服务|人工|真人|活人|客服|工作人员|服务人员|人员|经理|主管|专员|小二|坐席|人类|找个人|来个人|有人")
REQUEST_ZH = re.compile(r"(转|找|要|接|叫|换|联系|跟|和|同|让|请|给我|帮我|能不能|可以|有没有|来)")
CONTACT_INFO_ZH = re.compile(r"电话|号码|热线|邮箱|地址|几点|时间|上班|下班|营业|多少钱|收费|费用|怎么联系|如何联系|方式")
CONNECT_NOW_ZH = re.compile(r"转|接|聊|说话|沟通|对话|处理")
# Worded mood cues (nlu/cues.py): with one of them a "no" or "thanks" is a reaction for the policy.
MOOD_WORDS = ("frustration_phrase", "correction", "profanity", "displeasure")
BOT_CHALLENGE = "bot_challenge"


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def _within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance <= 1, or one swap of neighbouring letters ("thnaks")."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str
    unknown: tuple[str, ...] = ()


class Vocabulary:
    """The words of the conversation training examples, with a typo-tolerant lookup."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(words)
        self._by_length: dict[int, list[str]] = {}
        for w in self.words:
            self._by_length.setdefault(len(w), []).append(w)
        self._cache: dict[str, bool] = {}

    def known(self, word: str) -> bool:
        if word in self.words or word in FILLERS:
            return True
        stretched = re.sub(r"(.)\1{2,}", r"\1", word)  # "hiii", "thanksss", "byeee"
        if stretched != word and (stretched in self.words or re.sub(r"(.)\1{2,}", r"\1\1", word) in self.words):
            return True
        if len(word) < 4 or word.isdigit():
            return False
        if word not in self._cache:
            # a typo of a conversation word: any one edit from 5 letters on; a short word only
            # with a dropped letter ("helo"), so "card" never passes for "care"
            lengths = (len(word) - 1, len(word), len(word) + 1) if len(word) >= 5 else (len(word) + 1,)
            near = (w for n in lengths for w in self._by_length.get(n, ()))
            self._cache[word] = any(_within_one_edit(word, w) for w in near)
        return self._cache[word]


def judge(text: str, intent: str, vocabulary: Vocabulary, max_unknown: int = 0) -> Verdict:
    """Is this message only the conversational act its intent names?"""
    words = tokens(text)
    if intent == REQUEST_HUMAN and HAN.search(text):
        chinese = _judge_request_zh(text, words)
        if chinese.keep or not PERSON.search(text):
            return chinese
        # mixed ("talk to human，谢谢"): the English rules below may still hear a request
    if intent == REQUEST_HUMAN:
        if not PERSON.search(text):
            return Verdict(False, "asks for no person")
        if len(words) > 3 and not REQUEST.search(text):
            return Verdict(False, "names a person but asks for none")
        if len(words) > 3 and CONTACT_INFO.search(text) and not CONNECT_NOW.search(text):
            return Verdict(False, "asks how to reach people, not to be connected")
        return Verdict(True, "asks for a person")
    if not words:
        return Verdict(True, "no words")
    mood = mood_cues(text) if intent != BOT_CHALLENGE else []
    if mood:
        return Verdict(False, f"says how the customer feels, not only '{intent}': {', '.join(mood)}")
    unknown = tuple(w for w in words if not vocabulary.known(w))
    if len(unknown) > max_unknown or (unknown and len(unknown) * 3 > len(words)):
        return Verdict(False, f"carries more than '{intent}': {' '.join(unknown[:6])}", unknown)
    if all(w in POINTING or w in FILLERS for w in words):
        # "that one", "the stuff", "so?": every word is in some conversation example, but none
        # makes an act of it (DIET says "goodbye" to "that one"); the knowledge route decides.
        return Verdict(False, f"only pointing words, not '{intent}'")
    return Verdict(True, "conversation only", unknown)


def mood_cues(text: str) -> list[str]:
    """The worded mood cues of a message (English or Chinese), as the policy will see them."""
    cues = find_cues_zh(text) if HAN.search(text) else find_cues(text)
    return [c for c in cues.names() if c in MOOD_WORDS]


def _judge_request_zh(text: str, words: list[str]) -> Verdict:
    """request_human for a message with Chinese in it."""
    if not PERSON_ZH.search(text):
        return Verdict(False, "asks for no person")
    if not [w for w in tokens(PERSON_ZH.sub(" ", text)) if w not in FILLERS and w != "请"]:
        return Verdict(True, "calls for a person")  # "人工客服！", "客服客服"
    if len(words) > 3 and not REQUEST_ZH.search(text):
        return Verdict(False, "names a person but asks for none")
    if CONTACT_INFO_ZH.search(text) and not CONNECT_NOW_ZH.search(text):
        return Verdict(False, "asks how to reach people, not to be connected")
    return Verdict(True, "asks for a person")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class ConversationGate(GraphComponent):
    """Demotes a conversational intent to the knowledge route when the message says more."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"max_unknown": 0}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 vocabulary: Optional[Vocabulary] = None) -> None:
        self.config = config
        self._storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary or Vocabulary(())

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "ConversationGate":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """The vocabulary is every word of the training examples (all of them are conversation)."""
        words = sorted({w for m in training_data.intent_examples for w in tokens(m.get("text") or "")})
        self.vocabulary = Vocabulary(words)
        with self._storage.write_to(self._resource) as directory:
            (directory / "vocabulary.json").write_text(json.dumps(words), encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "ConversationGate":
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):  # not trained (e.g. `rasa train core`): no vocabulary
            words = []
        return cls(config, model_storage, resource, Vocabulary(words))

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get("intent") or {}
            name = intent.get("name")
            text = message.get("text") or ""
            if not name or name == FALLBACK_INTENT or text.startswith("/"):  # "/intent" payloads are buttons
                continue
            verdict = judge(text, name, self.vocabulary, int(self.config.get("max_unknown", 0)))
            if verdict.keep:
                continue
            confidence = float(intent.get("confidence") or 0.0)
            message.set("intent", {"name": FALLBACK_INTENT, "confidence": confidence}, add_to_output=True)
            ranking = [r for r in message.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
            message.set("intent_ranking", [{"name": FALLBACK_INTENT, "confidence": confidence}, *ranking], add_to_output=True)
            message.set(GATE, {"intent": name, "confidence": round(confidence, 4), "reason": verdict.reason}, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
