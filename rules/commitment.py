"""The prospect's own commitment, read from their reply, for quoting back in a follow-up.

The stage-2 playbook (SPEC section 5, `accountability`) holds a prospect who went dark to
what they said: "I'm confused: you said you'd run it past your IT team ... Has something
changed?". `find_commitment` finds that sentence in the excerpt of their last reply
(`rules.excerpt.reply_text`) and turns it around for the rep to quote. Theory of operation:

* **Sentences.** The excerpt is split into sentences (hard-wrapped lines joined, short
  lines such as "Hi Dana," kept apart). Questions, conditionals ("If the budget clears,
  we'll ..."), hedges ("we might"), negations ("we won't") and the rep's own words
  ("you said ...") are never candidates; an excerpt that declines (`rules.refusal`) or
  reads like an out-of-office notice yields nothing at all.
* **Three kinds.** A `next_step` is a first-person promise of an action ("I'll run it past
  our IT team", "Let me discuss it with my team", "our CFO will review it"); a `timeline`
  a first-person deadline or decision date ("We need to decide by end of Q1", "our
  contract expires in June"); a `problem` a first-person statement of the business issue
  ("we're losing $40k a month on manual invoicing"). These are the accountability
  playbook's "their last commitment, their business issue and timeline".
* **One winner.** A next step beats a timeline, which beats a problem (SPEC section 5
  asks for the promised next step first); within a kind a sentence with a time expression
  wins, then the earlier one. Sentences too long to quote gracefully are skipped.
* **Turned around.** `Commitment.quoted` is the clause from its subject on, in reported
  speech from the rep's side: I/we -> you, my/our -> your, you -> me, your -> my, will ->
  would, 'll -> 'd, I'm/we're/is -> you were/was, need/want/plan -> needed/wanted/planned ("we'll
  discuss it with the team" -> "you'd discuss it with the team"). A trailing "but ..."
  clause is left out. Everything is one pass of word-level rules, so "I'll send you the
  specs" becomes "you'd send me the specs", never "you'd send you".

Precision over recall throughout: a wrong quote in a follow-up embarrasses the rep, a
missing one only leaves the template's generic wording. English only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from rules.refusal import says_no

__all__ = ["Commitment", "CommitmentKind", "find_commitment"]

CommitmentKind = Literal["next_step", "problem", "timeline"]
_KINDS: frozenset[str] = frozenset(get_args(CommitmentKind))
# A next step always beats a timeline, which always beats a problem; a time expression
# breaks ties within a kind.
_SCORES: dict[str, int] = {"next_step": 5, "timeline": 3, "problem": 1}
_MAX_QUOTED_CHARS = 180
_MAX_QUOTED_WORDS = 25
_MIN_QUOTED_WORDS = 4


@dataclass(frozen=True)
class Commitment:
    """The prospect's sentence, the clause turned around for quoting, and what it names."""

    sentence: str
    quoted: str
    kind: CommitmentKind

    def __post_init__(self) -> None:
        if not self.sentence.strip() or not self.quoted.strip():
            raise ValueError("a commitment needs its sentence and its quoted form")
        if self.kind not in _KINDS:
            raise ValueError(f"unknown commitment kind {self.kind!r}")


_ACTION = (
    r"discuss|talk|speak|chat|check|review|look\s+(?:into|at|over|through)|look\b(?!\s+forward)|take\s+a\s+(?:closer\s+)?look|"
    r"have\s+a\s+(?:look|think|chat|call|word)|run\s+(?:it|this|that|them|the\s+\w+)\s+"
    r"(?:past|by)|get\s+back|circle\s+back|come\s+back|follow\s+up|reach\s+out|touch\s+base|"
    r"check\s+in|revert|send|share|forward|pass\s+(?:it|this|that|them)\s+(?:on|along)|"
    r"present|show|loop|bring|meet|schedule|set\s+up|book|arrange|call|ring|decide|"
    r"make\s+(?:a|the|our|my|final|a\s+final)\s+decision|confirm|sign|approve|go\s+over|"
    r"go\s+through|think\s+(?:it|this|that)\s+over|consider|evaluate|assess|test|trial|try|"
    r"pilot|compare|read|sync|update|keep\s+you\s+(?:posted|updated|informed)|"
    r"let\s+you\s+know|escalate|raise|prepare|pull\s+together|put\s+together|work\s+on|"
    r"finali[sz]e|submit|move\s+forward|proceed|start|kick\s+off|install|connect|ping|"
    r"coordinate|align|digest|figure\s+out|sort\s+out|get\s+(?:you|it|this|that|them|the|"
    r"our|my|a)\b|be\s+in\s+touch|give\s+you|drop\s+you|shoot\s+you|e-?mail|write|"
    r"report\s+back|come\s+up\s+with|draft|gather|collect|provide|respond|reply|answer|"
    r"introduce|involve|invite|take\s+(?:it|this|that)\s+(?:to|up)|reconvene|regroup|"
    r"revisit|place\s+(?:the|an|our)\s+order|order|buy|purchase|budget|"
    r"see\s+(?:a|the|how|it|this|that|some|more|your)\b"
)
_SUBJECT = r"\b(?:I|[Ww]e|(?:[Oo]ur|[Mm]y)(?:\s+[\w&-]+){1,3}?)"
_FIRST_MODAL = (
    r"(?:\s*'ll|\s+will|\s+shall|\s*'m\s+going\s+to|\s+am\s+going\s+to|\s*'re\s+going\s+to|"
    r"\s+are\s+going\s+to|\s+is\s+going\s+to|\s+(?:plan|plans|intend|intends|aim|aims|expect|"
    r"expects)\s+to|\s*'d\s+like\s+to|\s+would\s+like\s+to|\s*'m\s+planning\s+to|"
    r"\s*'re\s+planning\s+to|\s+(?:am|are)\s+planning\s+to)"
)
_ADVERBS = (
    r"(?:\s+(?:also|then|probably|definitely|certainly|likely|gladly|happily|quickly|first|"
    r"both|all))*"
)
_NEXT_STEP = re.compile(
    rf"(?P<subject>{_SUBJECT}){_FIRST_MODAL}{_ADVERBS}\s+(?:try\s+to\s+|be\s+able\s+to\s+)?"
    rf"(?:{_ACTION})\b|(?P<let>\b[Ll]et\s+(?:me|us)\s+)(?:{_ACTION})\b|"
    rf"(?P<lets>\b[Ll]et's\s+)(?:{_ACTION})\b"
)
_DECISION = (
    r"decide|make\s+(?:a|the|our|my|final|a\s+final)\s+decision|choose|pick|select|sign|"
    r"finali[sz]e|launch|go\s+live|roll\s+(?:\w+\s+)?out|implement|deploy|"
    r"have\s+(?:\w+\s+){0,3}in\s+place|get\s+(?:\w+\s+){0,3}(?:done|in\s+place|live|signed|"
    r"started|approved)|start|kick\s+off|switch|migrate|budget|replace|buy|purchase|onboard|"
    r"be\s+live|be\s+up\s+and\s+running|complete|wrap\s+up|close|move"
)
_TIMELINE = re.compile(
    rf"(?P<subject>{_SUBJECT})(?:\s*'re|\s+are|\s*'m|\s+am)?\s+(?:need|needs|have|has|want|"
    rf"wants|plan|plans|hope|hopes|expect|expects|aim|aims|intend|intends|looking|hoping|"
    rf"planning|aiming|trying|would\s+like|'d\s+like|must)\s+to\s+(?:{_DECISION})\b|"
    r"(?P<subject2>\b(?:[Oo]ur|[Mm]y|[Tt]he)\s+(?:\w+\s+)?(?:deadline|target\s+date|go-live(?:\s+date)?|"
    r"launch\s+date|timeline|decision\s+date|cut-?off|renewal(?:\s+date)?|budget\s+cycle|"
    r"contract\s+renewal|fiscal\s+year)\s+(?:is|was|will\s+be|falls)\b)|"
    r"(?P<subject3>\b(?:[Oo]ur|[Mm]y)\s+(?:current\s+)?(?:contract|licen[cs]e|subscription|"
    r"agreement)(?:\s+with\s+[\w&-]+(?:\s+[\w&-]+)?)?\s+(?:expires|ends|runs\s+out|is\s+up|"
    r"renews|comes\s+up\s+for\s+renewal)\b)|"
    r"(?P<subject4>\b(?:I|[Ww]e)(?:\s*'re|\s+are|\s*'m|\s+am)\s+(?:targeting|aiming\s+for|"
    r"shooting\s+for|planning\s+for)\b)"
)
_MONTH = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DAY = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri"
_TIME = re.compile(
    rf"\b(?:(?:by|before|until|till|in|on|within|no\s+later\s+than|early|mid|late|at)\s+)?"
    rf"(?:(?:the\s+)?end\s+of\s+(?:the\s+)?(?:day|week|month|quarter|year|q[1-4]|{_MONTH})|"
    rf"eo[dwmqy]|q[1-4](?:\s+20\d\d)?|h[12]\s+20\d\d|(?:next|this|the\s+following)\s+"
    rf"(?:week|month|quarter|year|{_DAY}|spring|summer|fall|autumn|winter)|tomorrow|"
    rf"later\s+(?:this|next)\s+(?:week|month)|(?:{_DAY})\b|(?:{_MONTH})\b(?:\s+\d{{1,2}})?|"
    rf"\d{{1,2}}/\d{{1,2}}|(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)\b|"
    rf"(?:in|by|of|before|until|for)\s+20\d\d\b|"
    rf"(?:a|one|two|three|four|five|six|a\s+couple\s+of|a\s+few|\d+)\s+(?:days?|weeks?|months?)|"
    rf"the\s+holidays|year[-\s]end|(?:the\s+)?new\s+year)",
    re.IGNORECASE,
)
# A reply that talks about the month of May must not fire on the modal "may"; _TIME only
# counts "may" as a month after a preposition or before a day number (checked below).
_MAY_MODAL = re.compile(r"^(?:may)$", re.IGNORECASE)
_MONEY = re.compile(
    r"[$€£]\s?\d[\d,.]*\s?(?:k|m|mm|bn|million|thousand|billion)?\b|"
    r"\b\d[\d,.]*\s?(?:k|m|mm)?\s?(?:dollars|usd|eur|euros|pounds)\b|"
    r"\b\d[\d,.]*\s?%|\b\d[\d,.]*\s+(?:hours|hrs|days|people|ftes?|employees|staff|invoices|"
    r"tickets|orders|calls|customers|deals|accounts|errors|mistakes)\b",
    re.IGNORECASE,
)
_PROBLEM = re.compile(
    r"(?P<subject>\b(?:[Oo]ur|[Mm]y)\s+(?:(?:biggest|main|major|key|real|core|number\s+one|"
    r"#1|primary|current|only)\s+)?(?:problem|issue|challenge|pain(?:\s+point)?|headache|"
    r"bottleneck)s?\s+(?:is|are|was|has\s+been|right\s+now\s+is)\b)|"
    r"(?P<subject2>\b(?:I|[Ww]e)(?:\s*'re|\s+are|\s*'m|\s+am|\s*'ve\s+been|\s+have\s+been)\s+"
    r"(?:losing|wasting|spending|burning|bleeding|struggling|drowning|missing|paying|"
    r"falling\s+behind|overwhelmed|stuck)\b)|"
    r"(?P<subject3>\b(?:[Ii]t|[Tt]his|[Tt]hat)(?:\s+is|\s*'s)?\s+(?:costing|costs|cost)\s+(?:us|me)\b)|"
    r"(?P<subject4>\b(?:I|[Ww]e)\s+(?:lose|waste|spend|burn|struggle|miss|pay)\b)|"
    r"(?P<subject5>\b(?:I|[Ww]e)(?:\s*'re|\s+are|\s*'m|\s+am|\s*'ve\s+been|\s+have\s+been)?\s+"
    r"(?:having|have|had)\s+(?:(?:a\s+lot\s+of|serious|real|major|constant|ongoing|some)\s+)?"
    r"(?:trouble|issues|problems|difficult(?:y|ies)|a\s+hard\s+time)\b)|"
    r"(?P<subject6>\b(?:I|[Ww]e)\s+(?:can't|cannot|can\s+not)\s+(?:keep\s+up|scale|handle|"
    r"track|afford)\b)"
)
_PATTERNS: tuple[tuple[CommitmentKind, re.Pattern[str]], ...] = (
    ("next_step", _NEXT_STEP),
    ("timeline", _TIMELINE),
    ("problem", _PROBLEM),
)
# A loss or waste statement needs something concrete to be a business issue: "we're
# spending $30k" or "we waste hours on manual entry", not "I'm spending the week in Denver".
_CONCRETE = re.compile(
    r"\b(?:manual(?:ly)?|deals|customers|clients|revenue|money|churn|errors|mistakes|"
    r"spreadsheets?|time\s+on|hours|overtime|fines|penalties|margin|leads|sales)\b",
    re.IGNORECASE,
)

_QUESTION_START = re.compile(
    r"^(?:can|could|would|will|do|does|did|is|are|was|were|what|when|where|how|why|who|"
    r"which|should|shall|may|have|has)\b",
    re.IGNORECASE,
)
# Before the subject, a condition or time clause the quote would lose: "If the budget
# clears, we'll ...", "Once legal signs off, I'll ...". Inside the clause only true
# conditions count: "I'll send it once legal signs off" quotes faithfully.
_CONDITIONAL_BEFORE = re.compile(
    r"\b(?:if|unless|once|assuming|provided|as\s+soon\s+as|in\s+case|should\s+we|"
    r"depending|when|whenever|after|otherwise|or\s+else)\b",
    re.IGNORECASE,
)
_CONDITIONAL_IN = re.compile(
    r"\b(?:if|unless|assuming|provided|depending|in\s+case|otherwise)\b", re.IGNORECASE
)
_HEDGE = re.compile(
    r"\b(?:might|maybe|perhaps|possibly|not\s+sure|unsure|hopefully|try\s+and|"
    r"at\s+some\s+point|sometime|eventually|someday|or\s+not)\b|"
    r"(?<!\bby\s)(?<!\bin\s)(?<!\bon\s)(?<!\bof\s)(?<!\buntil\s)(?<!\bbefore\s)"
    r"(?<!\bmid\s)(?<!\bmid-)(?<!\bearly\s)(?<!\blate\s)\bmay\b(?!\s+\d)",
    re.IGNORECASE,
)
# Friendly noise that looks like a promise: "I'll talk to you soon", "I'll be in touch".
_PLEASANTRY = re.compile(
    r"^\S+(?:\s+\S+)?\s+(?:(?:talk|speak|chat)\s+(?:to|with)\s+you|be\s+in\s+touch|"
    r"(?:talk|speak|chat)\s+soon)\s*(?:soon|later|then|shortly)?$",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\b(?:not|never|no\s+longer|n't|nobody|nothing|neither|nor)\b|n't\b|\bwon't\b",
    re.IGNORECASE,
)
_REPORTED = re.compile(
    r"\b(?:you|your)\s+(?:said|mentioned|asked|wrote|suggested|promised|told|proposed)\b|"
    r"\b(?:he|she|they)\s+(?:said|says|mentioned|told)\b",
    re.IGNORECASE,
)
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours)\b", re.IGNORECASE)
_OUT_OF_OFFICE = re.compile(
    r"out\s+of\s+(?:the\s+)?office|on\s+(?:annual\s+|parental\s+|sick\s+|maternity\s+|"
    r"paternity\s+)?leave\b|limited\s+access\s+to\s+(?:my\s+)?e-?mail|automatic\s+reply|"
    r"auto-?reply|away\s+from\s+(?:the\s+office|my\s+desk)|currently\s+away|"
    r"on\s+(?:vacation|holiday)|will\s+respond\s+(?:to\s+your\s+(?:e-?mail|message)\s+)?"
    r"(?:up)?on\s+my\s+return",
    re.IGNORECASE,
)
# Where a clause ends for quoting: a "but ..." or a dash aside is not part of the promise.
_CLAUSE_END = re.compile(
    r"\s*(?:,\s*(?:but|however|although|though|which|as|so|and\s+so|it|this|that|there|he|"
    r"she|they)\b|;|\s[-\u2013\u2014]\s|\s+but\s|\s+(?:although|though|however)\s|"
    r"\s+(?:\d{1,2}|[a-z])\)\s)"
)
# A "but ..." after the promise that takes it back: "I'll send it, but may not have all of it".
_TAKEN_BACK = re.compile(r"^\s*,?\s*(?:but|however|although|though)\b", re.IGNORECASE)
# The subject opens a relative or reported clause: "That is how I will start", "which we'll
# discuss shortly", "We trust that our policy will ...". Not a promise of its own.
_EMBEDDED = re.compile(
    r"\b(?:how|what|which|that|where|who|whom|whose|why|whatever|trust|believe|hope|think|"
    r"guess|suppose)\s*$",
    re.IGNORECASE,
)
_ABBREVIATIONS = re.compile(
    r"\b(?:e\.g|i\.e|etc|mr|mrs|ms|dr|vs|approx|inc|ltd|corp|co|jr|sr|st|a\.m|p\.m|"
    r"u\.s|[A-Z])\.$",
    re.IGNORECASE,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?\u2026])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9$€£])")
_LEADING_FILLER = re.compile(
    r"^(?:(?:hi|hey|hello|dear)\s+[\w.'-]+\s*[,!:]?\s*|(?:thanks|thank\s+you)(?:\s+(?:again|"
    r"so\s+much|for\s+[^,.!]{1,60}))?\s*[,!.]\s*|(?:ok|okay|great|sure|yes|sounds\s+good|"
    r"perfect|understood|got\s+it|noted|also|and|so|anyway|honestly|fyi)\s*[,!.:-]?\s+)+",
    re.IGNORECASE,
)


def find_commitment(excerpt: str) -> Commitment | None:
    """The prospect's sentence naming a next step, their timeline or their problem, or None.

    None when nothing fits: questions, pleasantries, thanks, out-of-office text, refusals,
    conditional or hedged promises. See the module docstring for what counts.
    """
    if not isinstance(excerpt, str) or not excerpt.strip():
        return None
    text = excerpt.replace("\u2019", "'").replace("\u2018", "'")
    if says_no(text) is not None or _OUT_OF_OFFICE.search(text):
        return None
    best: tuple[int, int, Commitment] | None = None
    for position, sentence in enumerate(_sentences(text)):
        found = _candidate(sentence)
        if found is None:
            continue
        score = _SCORES[found.kind] + (1 if _has_time(found.quoted) else 0)
        if best is None or score > best[0]:
            best = (score, position, found)
    return best[2] if best is not None else None


def _sentences(text: str) -> list[str]:
    """Sentences of `text`: wrapped lines joined, short lines ("Hi Dana,") kept apart."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        segments: list[str] = []
        for raw_line in paragraph.split("\n"):
            line = " ".join(raw_line.split())
            if not line:
                continue
            if segments and len(segments[-1]) >= 45 and not segments[-1].endswith(":"):
                segments[-1] = f"{segments[-1]} {line}"  # a hard-wrapped sentence goes on
            else:
                segments.append(line)
        for segment in segments:
            sentences.extend(_split_sentences(segment))
    return sentences


def _split_sentences(segment: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for found in _SENTENCE_SPLIT.finditer(segment):
        if _ABBREVIATIONS.search(segment[start : found.start()]):
            continue  # "e.g. Friday", "Mr. Lee": not a sentence end
        pieces.append(segment[start : found.start()].strip())
        start = found.end()
    pieces.append(segment[start:].strip())
    return [piece for piece in pieces if piece]


def _candidate(sentence: str) -> Commitment | None:
    """The commitment `sentence` states, or None."""
    body = sentence.rstrip()
    if body.endswith("?"):
        return None
    if not body.endswith((".", "!")) and _QUESTION_START.match(_LEADING_FILLER.sub("", body)):
        return None  # "Will we need to sign by Friday" is a question without its mark
    if _REPORTED.search(body) or len(body) > 400:
        return None
    for kind, pattern in _PATTERNS:
        for found in pattern.finditer(body):
            commitment = _checked(sentence, body, found, kind)
            if commitment is not None:
                return commitment
    return None


def _checked(
    sentence: str, body: str, found: re.Match[str], kind: CommitmentKind
) -> Commitment | None:
    """The commitment `found` in `body` makes, unless its context takes the promise back."""
    start = found.start()
    before = body[:start]
    clause = _clause(body[start:])
    if _weakened(before, clause, body[start + len(clause) :]):
        return None
    if kind != "problem" and _negated(before, clause[: found.end() - start + 1]):
        return None
    if kind == "timeline" and not _has_time(clause):
        return None
    if kind == "problem" and not _is_business_issue(found, clause):
        return None
    quoted = _turn_around(clause, lets=bool(found.groupdict().get("lets")))
    words = len(quoted.split())
    if not _MIN_QUOTED_WORDS <= words <= _MAX_QUOTED_WORDS or len(quoted) > _MAX_QUOTED_CHARS:
        return None
    return Commitment(sentence=" ".join(sentence.split()), quoted=quoted, kind=kind)


def _weakened(before: str, clause: str, rest: str) -> bool:
    """Whether a condition, hedge, aside or pleasantry makes the clause no promise."""
    taken_back = _TAKEN_BACK.match(rest) is not None and bool(
        _NEGATION.search(rest) or _HEDGE.search(rest)
    )
    return (
        taken_back
        or _EMBEDDED.search(before) is not None
        or _CONDITIONAL_BEFORE.search(before) is not None
        or _CONDITIONAL_IN.search(clause) is not None
        or _PLEASANTRY.match(clause) is not None
        or _HEDGE.search(clause) is not None
        or _HEDGE.search(before[-30:]) is not None
    )


def _negated(before: str, promise: str) -> bool:
    """ "We won't ...", "I don't think we'll ...": a negated next step or timeline."""
    return bool(_NEGATION.search(promise) or _NEGATION.search(before[-25:]))


def _is_business_issue(found: re.Match[str], clause: str) -> bool:
    if _SECOND_PERSON.search(clause):
        return False  # about the rep's product, or a request: not their business issue
    if found.group("subject2") or found.group("subject4"):
        return bool(_MONEY.search(clause) or _CONCRETE.search(clause))
    return True


def _clause(text: str) -> str:
    """The commitment's clause: up to a "but ..." or dash aside, final punctuation dropped."""
    ends = _CLAUSE_END.search(text)
    clause = text[: ends.start()] if ends else text
    return clause.strip().rstrip(".!;:,\u2026 ").strip()


def _has_time(text: str) -> bool:
    for found in _TIME.finditer(text):
        word = found.group(0).strip()
        if _MAY_MODAL.match(word):
            continue
        return True
    return False


# Reported speech from the rep's side. Multi-word keys are matched first; every key is a
# whole-word match, case-insensitive, and the text is rewritten in one pass.
_TURNS: dict[str, str] = {
    "let me know": "let you know",
    "let us know": "let you know",
    "let me": "you'd",
    "let us": "you'd",
    "i am going to": "you were going to",
    "i'm going to": "you were going to",
    "we are going to": "you were going to",
    "we're going to": "you were going to",
    "i will": "you would",
    "we will": "you would",
    "i'll": "you'd",
    "we'll": "you'd",
    "i shall": "you would",
    "we shall": "you would",
    "i would": "you would",
    "we would": "you would",
    "i'd": "you'd",
    "we'd": "you'd",
    "i am": "you were",
    "i'm": "you were",
    "we are": "you were",
    "we're": "you were",
    "i was": "you were",
    "we were": "you were",
    "i have": "you had",
    "we have": "you had",
    "i've": "you'd",
    "we've": "you'd",
    "i can": "you could",
    "we can": "you could",
    "i can't": "you couldn't",
    "we can't": "you couldn't",
    "i cannot": "you couldn't",
    "we cannot": "you couldn't",
    "i don't": "you didn't",
    "we don't": "you didn't",
    "i must": "you had to",
    "we must": "you had to",
    "let you know": "let me know",
    "let you have": "let me have",
    "let you see": "let me see",
    "you both": "us both",
    "you guys": "us",
    "you all": "us",
    "y'all": "us",
    "you're": "I was",
    "you'll": "I'd",
    "you've": "I'd",
    "you'd": "I'd",
    "will": "would",
    "won't": "wouldn't",
    "shall": "should",
    "can": "could",
    "can't": "couldn't",
    "is": "was",
    "are": "were",
    "isn't": "wasn't",
    "aren't": "weren't",
    "it's": "it was",
    "that's": "that was",
    "there's": "there was",
    "has": "had",
    "needs": "needed",
    "wants": "wanted",
    "plans": "planned",
    "hopes": "hoped",
    "expects": "expected",
    "i": "you",
    "we": "you",
    "me": "you",
    "us": "you",
    "my": "your",
    "our": "your",
    "mine": "yours",
    "ours": "yours",
    "myself": "yourself",
    "ourselves": "yourselves",
    "you": "me",
    "your": "my",
    "yours": "mine",
    "yourself": "myself",
}
# After "I" or "we": the present tense of a few verbs, shifted back (reported speech).
_PAST: dict[str, str] = {
    "need": "needed",
    "want": "wanted",
    "plan": "planned",
    "hope": "hoped",
    "expect": "expected",
    "intend": "intended",
    "aim": "aimed",
    "think": "thought",
    "spend": "spent",
    "lose": "lost",
    "waste": "wasted",
    "struggle": "struggled",
    "pay": "paid",
    "miss": "missed",
    "burn": "burnt",
    "have": "had",
    "do": "did",
    "get": "got",
}
# "you" as a subject is the rep: "get you what you need" -> "get me what I needed".
_YOU_DID: dict[str, str] = {
    "need": "needed",
    "want": "wanted",
    "wish": "wished",
    "requested": "requested",
    "asked": "asked",
    "mentioned": "mentioned",
    "are": "were",
    "were": "were",
    "have": "had",
    "had": "had",
    "will": "would",
    "would": "would",
    "can": "could",
    "could": "could",
    "should": "should",
    "may": "might",
    "might": "might",
    "must": "had to",
    "think": "thought",
    "prefer": "preferred",
    "suggested": "suggested",
    "proposed": "proposed",
}
for _verb, _past in _YOU_DID.items():
    _TURNS.setdefault(f"you {_verb}", f"I {_past}")
for _verb, _past in _PAST.items():
    _TURNS.setdefault(f"i {_verb}", f"you {_past}")
    _TURNS.setdefault(f"we {_verb}", f"you {_past}")
_TURN_PATTERN = re.compile(
    r"(?<![\w'])(?:"
    + "|".join(
        re.escape(key).replace(r"\ ", r"\s+")
        for key in sorted(_TURNS, key=lambda key: (-len(key.split()), -len(key)))
    )
    + r")(?![\w'])",
    re.IGNORECASE,
)


def _turn_around(clause: str, *, lets: bool = False) -> str:
    """`clause` as the rep quotes it back: pronouns turned around, tenses shifted back."""
    if lets:
        clause = re.sub(r"^[Ll]et's\s+", "\x00 ", clause)  # "let's" is the rep too: "we'd"

    def turn(found: re.Match[str]) -> str:
        original = found.group(0)
        if original == "US":
            return original  # the country, not "us"
        return _TURNS[" ".join(original.lower().split())]

    turned = " ".join(_TURN_PATTERN.sub(turn, clause).split()).replace("\x00", "we'd")
    first = turned.split(" ", 1)[0]
    if first in _LOWERABLE:
        turned = turned[:1].lower() + turned[1:]
    return turned


_LOWERABLE = frozenset({"The", "This", "That", "It", "Our", "My", "Your", "Let", "Everyone"})
