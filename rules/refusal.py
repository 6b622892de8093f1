"""Whether a prospect's reply declines: "not interested", "remove me", "another vendor".

`says_no` is separate from `classify`: classification asks whether a person wrote a
message at all, this asks what a person's reply says. A prospect who said no is
`excluded` (SPEC section 3), so a match must be a plain no. Theory of operation:

* **Phrases.** A fixed list of declining phrases in English, German, French and Spanish
  (`_NO_PHRASES`); the first that survives the checks below is returned as evidence.
* **Precision over recall.** Calling a reply a no when it was not drops a live prospect,
  so a phrase does not count when its own clause negates, reports or supposes it ("not
  that we're not interested", "if you're not interested"), when its sentence softens it
  ("not interested right now, but ..."), or when its sentence is a question.
"""

from __future__ import annotations

import re

__all__ = ["says_no"]

_NO_PHRASES = re.compile(
    "|".join(
        (
            # English
            r"\b(?:not|no longer|not really|not currently)\s+interested\b",
            r"\bno\s+interest\s+in\b",
            r"\b(?:remove|take)\s+(?:me|us)\s+(?:off|from)\s+(?:your|the|this)\s+"
            r"(?:(?:mailing|e-?mail|distribution|contact|marketing|sales)\s+)?"
            r"(?:lists?|database|mailings?|e-?mails|sequences?|campaigns?|system|outreach)\b",
            r"\bremove\s+(?:me|us)\s*(?:[.!]|$)",
            r"\bunsubscribe\s+(?:me|us)\b",
            r"\bplease\s+unsubscribe\b",
            r"\A\W*(?:unsubscribe|remove|stop)[.!]*[ \t]*(?:\n|\Z)",
            r"\bstop\s+(?:e-?mailing|contacting|messaging|writing\s+to|sending\s+(?:me|us))\b",
            r"\b(?:do\s+not|don't)\s+(?:e-?mail|contact|write\s+to)\s+(?:me|us)\s+"
            r"(?:again|anymore|any\s+more|further)\b",
            r"\b(?:went|gone|going|go)\s+with\s+(?:another|a\s+different|an\s+other|a\s+competing)"
            r"\s+(?:vendor|provider|supplier|solution|company|partner|tool|product|platform|"
            r"option|agency)\b",
            r"\b(?:decided|chosen|chose|selected|signed)\s+(?:to\s+go\s+with\s+|with\s+)?"
            r"(?:another|a\s+different)\s+(?:vendor|provider|supplier|solution|company|partner|"
            r"tool|product|platform|agency)\b",
            r"\b(?:decided|chosen)\s+to\s+go\s+(?:in\s+)?(?:another|a\s+different)\s+direction\b",
            r"\bdecided\s+not\s+to\s+(?:move\s+forward|proceed|pursue)\b",
            # German
            r"\bkein(?:e)?\s+interesse\b",
            r"\bkein\s+bedarf\b",
            r"\b(?:entfernen\s+sie\s+mich|nehmen\s+sie\s+mich\s+aus)\b",
            r"\bbitte\s+keine\s+(?:weiteren\s+)?(?:e-?mails|nachrichten|anfragen)\b",
            r"\bf[üu]r\s+einen\s+anderen\s+anbieter\s+entschieden\b",
            # French
            r"\bpas\s+(?:du\s+tout\s+)?int[ée]ress[ée]e?s?\b",
            r"\bplus\s+int[ée]ress[ée]e?s?\b",
            r"\b(?:retirez|d[ée]sinscrivez|supprimez)[-\s]+(?:moi|nous)\b",
            r"\bne\s+plus\s+(?:me|nous)\s+(?:contacter|[ée]crire|solliciter)\b",
            r"\bchoisi\s+un\s+autre\s+(?:prestataire|fournisseur|partenaire)\b",
            # Spanish
            r"\bno\s+(?:estamos|estoy)\s+interesad[oa]s?\b",
            r"\bno\s+(?:me|nos)\s+interesa\b",
            r"\bdar(?:me|nos)\s+de\s+baja\b",
            r"\bno\s+(?:me|nos)\s+(?:contacte[ns]?|escriba[ns]?)\s+m[áa]s\b",
            r"\b(?:elegido|escogido)\s+(?:a\s+)?otro\s+proveedor\b",
        )
    ),
    re.IGNORECASE | re.MULTILINE,
)
# Before the phrase, in its own clause: the phrase is negated, reported or hypothetical.
_NEGATED_BEFORE = re.compile(
    r"\b(?:not|never|nicht|kein|pas|nunca|if|whether|unless|wenn|ob|falls|si|"
    r"in\s+case|saying|said|say|assume|assumed|mean|meant)\b|n't\b",
    re.IGNORECASE,
)
# After the phrase, in the same sentence: a softened no ("not interested in X, but ...").
_SOFTENED_AFTER = re.compile(
    r"\b(?:but|however|although|though|yet|unless|until|aber|jedoch|mais|pero|sin\s+embargo|"
    r"right\s+now|at\s+the\s+moment|for\s+now|this\s+(?:year|quarter))\b",
    re.IGNORECASE,
)
# Every phrase above holds one of these words (lower case; the spelling an ASCII text can
# match). Most replies hold none, and looking for them costs a fraction of the phrases.
_GATE_WORDS = (
    *("interes", "remove", "take", "unsubscribe", "stop", "again", "more", "further"),
    *("other", "different", "competing", "direction", "decided", "bedarf", "mich"),
    *("keine", "anbieter", "moi", "nous", "plus", "autre", "baja", "contact", "escrib"),
    "proveedor",
)
_SENTENCE_END = re.compile(r"[.!?;\n]")
_CLAUSE_BREAK = re.compile(r"[,:()\-\u2013\u2014]")


def says_no(excerpt: str) -> str | None:
    """The phrase in which the prospect declines ("not interested", "remove me"), or None.

    Precision over recall: a phrase that is negated or reported in its clause ("not that
    we're not interested", "I'm not saying we're not interested"), hypothetical ("if
    you're not interested"), asked ("not interested?") or softened in its sentence
    ("not interested right now, but ...") does not count.
    """
    text = excerpt.replace("\u2019", "'").replace("\u2018", "'")
    # Only for ASCII text: there `lower()` folds case exactly as IGNORECASE does.
    if text.isascii():
        lowered = text.lower()
        if not any(word in lowered for word in _GATE_WORDS):
            return None
    for found in _NO_PHRASES.finditer(text):
        start, end = found.span()
        sentence_start = _last_boundary(text, start, _SENTENCE_END)
        clause_start = max(sentence_start, _last_boundary(text, start, _CLAUSE_BREAK))
        sentence_end = _next_boundary(text, end)
        if _NEGATED_BEFORE.search(text, clause_start, start):
            continue
        if _SOFTENED_AFTER.search(text, end, sentence_end):
            continue
        if sentence_end < len(text) and text[sentence_end] == "?":
            continue
        return found.group(0).strip()
    return None


def _last_boundary(text: str, position: int, boundary: re.Pattern[str]) -> int:
    last = 0
    for found in boundary.finditer(text, 0, position):
        last = found.end()
    return last


def _next_boundary(text: str, position: int) -> int:
    found = _SENTENCE_END.search(text, position)
    return found.start() if found else len(text)
