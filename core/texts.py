"""What Tandem itself says, in English and Chinese (issue 16).

Two kinds of text:
- BUSINESS_ZH: domain-neutral Chinese defaults of the business's texts (core/settings.Business),
  used when tandem.yml's `business: zh:` does not set one. Like the English defaults they name no
  business: {name} and {covers} are filled in.
- NOTICES: the router's and the bot's own notices (queue position, an agent joined, "did you
  mean", the assistant is down, buttons), chosen per message by the customer's language
  (core/language.py; the router keeps the language of the latest message in the conversation's
  profile, the widget's `lang` and Telegram's language_code set the first one).
"""
from __future__ import annotations

from core.language import Language

BUSINESS_ZH: dict[str, str] = {
    "covers": "我们的产品和服务",
    "greeting": "您好！我是{name}的智能助手，可以回答关于{covers}的问题。需要人工服务请输入「转人工」。",
    "goodbye": "再见，感谢您联系{name}！",
    "welcome": "不客气！还有什么可以帮您的吗？",
    "glad": "好的！还有什么可以帮您的吗？",
    "deny": "抱歉。能再多说一点吗？或者输入「转人工」联系工作人员。",
    "bot_challenge": "我是{name}的智能助手，是机器人。您随时可以转人工：输入「转人工」即可。",
    "refusal": "抱歉，这个问题我暂时帮不上忙。我可以回答关于{covers}的问题。能换个说法再问一次吗？或者输入「转人工」联系工作人员。",
    "rephrase": "我不确定找到的答案对不对。能换个说法、多提供一些细节吗？",
    "handoff": "正在为您转接人工客服，请稍候。客服会看到我们之前的全部对话。",
    "back_to_bot": "您已回到{name}智能助手。还有什么可以帮您的吗？",
    "csat_question": "您对本次服务满意吗？1 = 非常不满意，5 = 非常满意。",
    "csat_comment": "谢谢！还有什么想补充的吗？请直接输入，或点「不用了」。",
    "csat_no_comment": "不用了",
    "csat_thanks": "感谢您的评价！",
    "reassigned_agent": "抱歉让您久等了。我们的另一位同事正在接手您的对话。",
    "reassigned_queue": "抱歉让您久等了。您的对话已重新排队，将由下一位空闲的客服为您服务。",
    "followup_question": "您好，这里是{name}。您上次联系我们反映的问题，现在解决了吗？",
    "followup_yes": "已经解决了",
    "followup_no": "还没有",
    "followup_solved": "感谢您的反馈，很高兴问题已经解决！",
    "followup_reopened": "很抱歉听到这个消息。我们已为您重新开启工单，客服会尽快与您联系。",
    "followup_mail_hint": "您可以在我们之前对话的窗口里，点击问题下方的按钮回复。",
}

NOTICES: dict[str, dict[str, str]] = {
    "queued": {
        "en": "You're number {position} in the queue for a person.{wait} You can keep writing; they'll see your messages.",
        "zh": "您目前排在人工客服队列第 {position} 位。{wait}您可以继续留言，客服会看到您的消息。",
    },
    "queue_position": {"en": "You're now number {position} in the queue.{wait}", "zh": "您现在排在队列第 {position} 位。{wait}"},
    "estimated_wait": {"en": " Estimated wait: {wait}.", "zh": "预计等待{wait}。"},
    "wait_under_minute": {"en": "less than a minute", "zh": "不到 1 分钟"},
    "wait_minutes": {"en": "about {minutes} minute{s}", "zh": "约 {minutes} 分钟"},
    "nobody_online": {
        "en": " No one from our team is online right now: you can wait, or leave a message with your email and we'll reply.",
        "zh": "目前没有客服在线：您可以继续等待，或者留下邮箱并留言，我们会尽快回复。",
    },
    "closed": {
        "en": " We're closed right now.{when} You can leave a message with your email and we'll reply.",
        "zh": "我们现在不在服务时间。{when}您可以留下邮箱并留言，我们会回复您。",
    },
    "agent_joined": {"en": "{agent} from our support team has joined the chat.", "zh": "客服{agent}已加入对话。"},
    "agent_left": {"en": "{agent} has left the chat.", "zh": "客服{agent}已离开对话。"},
    "back_to_bot": {"en": "You're back with our assistant.", "zh": "您已回到智能助手。"},
    "bot_down": {
        "en": "Sorry, our assistant is having trouble right now. Your message is saved. "
              "Would you like a person from our team to take over?",
        "zh": "抱歉，智能助手暂时出了点问题。您的消息已保存。需要转人工客服吗？",
    },
    "did_you_mean": {"en": "Did you mean \"{a}\" or \"{b}\"?", "zh": "您是想问「{a}」还是「{b}」？"},
    "button_back_to_bot": {"en": "Back to the assistant", "zh": "回到智能助手"},
    "button_leave_message": {"en": "Leave a message", "zh": "留言"},
    "button_talk_to_person": {"en": "Talk to a person", "zh": "转人工"},
    "feedback_thanks": {"en": "Thanks for your feedback!", "zh": "感谢您的反馈！"},
}


def notice(key: str, lang: Language | str | None = "en", **values: object) -> str:
    """One notice in `lang` (English for anything but zh), with {placeholders} filled in."""
    variants = NOTICES[key]
    template = variants.get(lang or "en") or variants["en"]
    return template.format(**values) if values else template


def describe_wait(seconds: float | None, lang: str = "en") -> str:
    """"about 4 minutes" / "约 4 分钟" for a customer; empty when there is no estimate."""
    if seconds is None:
        return ""
    if seconds < 60:
        return notice("wait_under_minute", lang)
    minutes = round(seconds / 60)
    return notice("wait_minutes", lang, minutes=minutes, s="s" if minutes != 1 else "")
