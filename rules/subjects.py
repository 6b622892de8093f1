"""Subjects without their reply and forward prefixes, for display and for draft subjects.

`base_subject` reduces "RE: [External] AW: Fwd: Pricing" to "Pricing"; `reply_subject` turns
any subject into the one Relight writes on a follow-up draft ("Re: Pricing", SPEC section 6).
Subjects are never a threading link: `rules.threading` groups by headers and provider thread
ids only, and uses the base subject to name a conversation.

Theory of operation
-------------------
The subject is NFC-normalised and its whitespace collapsed, then the start is peeled, one
piece at a time, until nothing more comes off:

* a reply or forward prefix: a known word (`Re`, `Fwd`, `AW`, `WG`, `SV`, `RIF`, `I`,
  `回复`, ...) as a whole word at the start, an optional counter (`[2]`, ` (3)`, `^2`), and a
  colon, ASCII or full-width (U+FF1A; French mail puts a space before it: `RE : x`).
  "Question re: pricing" keeps its "re:" because the prefix must open the subject;
* a security banner a mail gateway put in brackets (`[External]`, `[EXT]`, `[SPAM]`, ...),
  which is never part of what the sender wrote;
* any other bracketed tag (`[sales-team]`, `[PATCH]`), but only when a prefix follows it
  (after any further tags): "[sales-team] Re: Pricing" is a list's copy of a reply, while
  "[PATCH] Fix x" is a subject of its own;
* a forward wrapped as a whole in brackets, "[Fwd: x]" (RFC 5256).

A trailing "(fwd)" is cut as well. What is left may be empty ("Re:", "RE: RE:"): then
`base_subject` returns "" and callers show "(no subject)"; `reply_subject` returns "Re:",
what mail clients write when replying to a message without a subject.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["base_subject", "reply_subject"]

# Reply and forward words, lower-case (matching ignores case). Longer words need not come
# first: the pattern demands a colon right after the word, so "fw" cannot eat "fwd:".
_PREFIX_WORDS = (
    "re",  # Latin: English, French, Spanish, Italian...
    "fwd",
    "fw",
    "aw",  # German: Antwort
    "wg",  # German: Weitergeleitet
    "sv",  # Nordic: Svar
    "vs",  # Nordic: Videresend / Finnish: Vastaus
    "vb",  # Swedish: Vidarebefordrat
    "vl",  # Finnish: Välitetty
    "antw",  # Dutch: Antwoord
    "doorst",  # Dutch: Doorgestuurd
    "rif",  # Italian: Riferimento
    "r",  # Italian: Risposta
    "i",  # Italian: Inoltrato
    "tr",  # French: Transféré
    "réf.",  # French: Référence
    "réf",
    "rv",  # Spanish: Reenviado
    "enc",  # Portuguese / Spanish: Encaminhado
    "res",  # Portuguese: Resposta
    "odp",  # Polish: Odpowiedź
    "pd",  # Polish: Przekazanie dalej
    "přeposlat",  # Czech
    "vá",  # Hungarian: Válasz
    "továbbítás",  # Hungarian
    "ynt",  # Turkish: Yanit
    "ilt",  # Turkish: İlet
    "ilt.",
    "απ",  # Greek: Απάντηση
    "σχετ",  # Greek: Σχετικά
    "πρθ",  # Greek: Προώθηση
    "回复",  # Chinese, simplified: reply
    "回覆",  # Chinese, traditional: reply
    "答复",  # Chinese: answer
    "转发",  # Chinese, simplified: forward
    "轉寄",  # Chinese, traditional: forward
    "轉發",
    "返信",  # Japanese: reply
    "転送",  # Japanese: forward
    "회신",  # Korean: reply
    "전달",  # Korean: forward
    "external",  # gateways that write "EXTERNAL: " instead of a bracketed banner
)

# Every word must stand alone: not preceded by a letter or digit (it opens the subject) and
# not followed by one (so "Ire:" or "Rex:" are not prefixes).
_PREFIX = re.compile(
    r"(?:"
    + "|".join(re.escape(word) for word in sorted(_PREFIX_WORDS, key=len, reverse=True))
    + r")(?![^\W_])\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4})?\s*[:\uff1a]\s*",
    re.IGNORECASE,
)

_TAG = re.compile(r"\[([^\[\]]{1,100})\]\s*")
_FORWARD_WRAP = re.compile(r"\[\s*fwd?\s*[:\uff1a]\s*(.*)\]\s*$", re.IGNORECASE)
_FORWARD_SUFFIX = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)

# Banners put in by security gateways, compared after lower-casing and collapsing spaces.
_BANNERS = frozenset(
    {
        "external",
        "ext",
        "extern",
        "externe",
        "externo",
        "esterno",
        "external email",
        "external e-mail",
        "external mail",
        "external message",
        "external sender",
        "caution",
        "caution: external",
        "caution - external",
        "caution external",
        "caution: external email",
        "warning: external",
        "warning: external email",
        "spam",
        "*spam*",
        "suspected spam",
        "possible spam",
        "probable spam",
        "suspicious",
        "phishing",
        "suspected phishing",
    }
)


def base_subject(subject: str) -> str:
    """The subject without leading reply/forward prefixes, banners and list tags.

    Returns "" when nothing but prefixes is left (callers show "(no subject)").
    """
    text = " ".join(unicodedata.normalize("NFC", subject).split())
    while text:
        peeled = _peel(text)
        if peeled is None:
            break
        text = peeled
    while (suffix := _FORWARD_SUFFIX.search(text)) is not None and suffix.start() > 0:
        text = text[: suffix.start()]
    return text.strip()


def reply_subject(subject: str) -> str:
    """The subject of a reply: exactly one "Re: " before the base subject ("Re:" if empty)."""
    base = base_subject(subject)
    return f"Re: {base}" if base else "Re:"


def _peel(text: str) -> str | None:
    """`text` with one leading piece removed, or None when it starts with none."""
    prefix = _PREFIX.match(text)
    if prefix is not None:
        return text[prefix.end() :]
    wrapped = _FORWARD_WRAP.match(text)
    if wrapped is not None:
        return wrapped.group(1).strip()
    tag = _TAG.match(text)
    if tag is None:
        return None
    rest = text[tag.end() :]
    if _is_banner(tag.group(1)) or _prefix_follows(rest):
        return rest
    return None


def _prefix_follows(text: str) -> bool:
    """Whether a reply/forward prefix comes next, after any further bracketed tags."""
    while (tag := _TAG.match(text)) is not None:
        text = text[tag.end() :]
    return _PREFIX.match(text) is not None


def _is_banner(tag: str) -> bool:
    return " ".join(tag.lower().split()) in _BANNERS
