"""Support-specific signals in one message: shouting, exclamation runs, profanity, "this is useless".

VADER scores general English; customers of a support desk signal frustration in ways it misses
("third time I ask", "useless bot") or overweights. These cues feed the sentiment score and,
separately, the policy's frustration signal, so each one is named in the escalation reasons.
Also the language check: the sentiment model is English-only and says so instead of guessing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PROFANITY = re.compile(
    r"\b(f+u+c+k\w*|wtf|sh[i1]t\w*|crap\w*|damn\w*|bullsh\w*|bs|ass(hole)?s?|bastard\w*|piss\w*|bloody|"
    r"screw (you|this|that)|sucks?|stfu)\b",
    re.IGNORECASE,
)
MASKED_PROFANITY = re.compile(r"(?<!\w)[fsab][*#@$%]{2,}\w*", re.IGNORECASE)  # "f***", "s#!t"
# Support-desk frustration: about the service or the conversation itself.
FRUSTRATION = re.compile(
    r"\b(useless|pointless|hopeless|ridiculous|unacceptable|absurd|pathetic|joke|disgrace\w*|disgusting|"
    r"worst|terrible|horrible|awful|incompetent|rip[- ]?off|scam\w*|fed up|sick of|had enough|"
    r"waste of (my )?(time|money)|not (helpful|helping)|(doesn't|does not|didn't|did not|don't|do not) help\w*|"
    r"(still|again) (not|no|nothing|waiting)|(third|3rd|fourth|4th|fifth|5th) time|"
    r"how many times|already (told|asked|said)|for (days|weeks|ages)|never again|"
    r"you('re| are) not listening|stupid bot|dumb bot|are you (even )?(listening|real|serious))\b",
    re.IGNORECASE,
)
# The customer says the bot's last reply missed (confusion, not necessarily anger): a signal about
# the conversation, whatever the business.
CORRECTION = re.compile(
    r"\b(not what i (asked|meant|said|wanted|need(ed)?)|(didn't|doesn't|did not|does not|don't|do not) answer|"
    r"answer (my|the) question|read my (question|message)|no,? no,? no|i (already|just) (asked|said|told you)|"
    r"that('s| is) not (it|right|what i)|wrong answer|same question|i asked (a|you a) (simple )?question|"
    r"still no answer|keeps? (dodging|avoiding|ignoring)|not listening|that('s| is) (useless|not helpful))\b",
    re.IGNORECASE,
)
# The customer names their own displeasure ("I'm getting annoyed"): mood, not topic.
DISPLEASURE = re.compile(
    r"\b(annoy(ed|ing)|unhappy|not happy|disappoint(ed|ing)|upset|frustrat\w*|angry|furious|livid|fuming|appalled|"
    r"disgusted|fed up|sick of|had enough|really bad|so bad)\b",
    re.IGNORECASE,
)
# Words that point at something or fill a sentence but name nothing ("that one", "same as last
# time", "the other one I said", "about my thing from before"), whatever the business.
POINTING = frozenset("""
    a an the it it's its that that's this these those one ones thing things stuff same other another
    before last time again about what which whatever my your our from as i i'm you me we said say told
    mean meant know like so erm um umm hmm uh er is was be and or of for to with on in at such kind sort
""".split())
# Greetings and answers: a conversational act of their own, but nothing to look up either.
ACKS = frozenset("hello hi hey yes yeah no ok okay well now then just still there here anyway".split())
_WORD = re.compile(r"[a-z0-9']+")


def refers_to_nothing_said(text: str) -> bool:
    """Only pointing, filler and greeting words (English): nothing in the message to look up."""
    words = _WORD.findall(text.lower())
    return 0 < len(words) <= 8 and all(w in POINTING or w in ACKS for w in words)


POLITE_POSITIVE = re.compile(r"\b(thanks?( you)?|thank u|thx|great|perfect|awesome|brilliant|love|appreciate\w*)\b", re.IGNORECASE)

# Enough common English words to tell an English message from another language (not a language-ID model).
ENGLISH_WORDS = frozenset(
    """a about after again all am an and any are as at be been before but by can cancel card could
    did do does don't for from get got has have haven't help here how i i'm if in into is it it's
    its just know like me my need no not now of on or order our out please refund return same
    so still than that the their them then there this to too up us was we what when where which
    who why will with would yes you your yet hi hello thanks thank want wrong late never ever item
    delivery package parcel money account pay paid sent email days week why where""".split()
)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


@dataclass(frozen=True)
class Cues:
    """What a single message shows beyond its words' polarity."""

    shouting: bool = False  # most letters in capitals (at least 2 words of 3+ letters)
    exclamations: int = 0  # the longest run of "!" (or "?!")
    profanity: int = 0
    frustration: list[str] = field(default_factory=list)  # the phrases found, for the reasons
    english: bool = True
    correction: bool = False  # "that's not what I asked": the last reply missed
    displeasure: bool = False  # "I'm really unhappy": the customer names their mood

    def names(self) -> list[str]:
        found = []
        if self.shouting:
            found.append("shouting")
        if self.exclamations >= 2:
            found.append("exclamations")
        if self.profanity:
            found.append("profanity")
        if self.frustration:
            found.append("frustration_phrase")
        if self.correction:
            found.append("correction")
        if self.displeasure:
            found.append("displeasure")
        return found

    def to_dict(self) -> dict[str, object]:
        return {
            "shouting": self.shouting, "exclamations": self.exclamations, "profanity": self.profanity,
            "frustration": self.frustration, "english": self.english, "correction": self.correction,
            "displeasure": self.displeasure,
        }


def is_english(words: list[str]) -> bool:
    """Short or mostly-English messages count as English; a message with no common English word
    among four or more words (or mostly non-Latin letters) does not."""
    if not words:
        return True
    latin = sum(1 for w in words if w.isascii())
    if latin / len(words) < 0.5:
        return False
    if len(words) < 4:
        return True
    known = sum(1 for w in words if w.lower() in ENGLISH_WORDS)
    return known / len(words) >= 0.12


def find_cues(text: str) -> Cues:
    words = WORD.findall(text)
    long_words = [w for w in words if len(w) >= 3 and w.isascii()]
    caps = [w for w in long_words if w.isupper()]
    run = longest = 0
    for w in words:  # "WHERE IS MY PARCEL" inside a calmer sentence is shouting too
        run = run + 1 if len(w) >= 2 and w.isupper() and w.isascii() else 0
        longest = max(longest, run)
    shouting = len(caps) >= 2 and (len(caps) / max(1, len(long_words)) >= 0.6 or longest >= 3)
    runs = [len(m) for m in re.findall(r"[!?]*![!?]*", text)]
    frustration = sorted({m.group(0).lower() for m in FRUSTRATION.finditer(text)})
    return Cues(
        shouting=shouting,
        exclamations=max(runs, default=0),
        profanity=len(PROFANITY.findall(text)) + len(MASKED_PROFANITY.findall(text)),
        frustration=frustration,
        english=is_english(words),
        correction=bool(CORRECTION.search(text)),
        displeasure=bool(DISPLEASURE.search(text)),
    )
