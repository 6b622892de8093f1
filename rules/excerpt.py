"""The new text of a reply: what the sender wrote this time, without the history it carries.

SPEC section 2 lets Relight keep, for a genuine inbound reply, a short excerpt of the *new*
text (quotes and signature removed, at most `privacy.excerpt_chars`); `rules.commitment`
reads the prospect's own words from it and `classify` reads absence notices in it.
`reply_text` turns the first text part of a message into that excerpt. Theory of operation:

* **History is cut, quotes are skipped.** Lines are read top-down. A line that opens the
  quoted history cuts the text there: an attribution ("On <date>, <name> wrote:", "Le ...
  a écrit :", "Am ... schrieb ...:", "El ... escribió:", wrapped over up to five lines, and
  the undated "<name> <address> wrote:" and dated "<date>, <name> <address>:" shapes), an
  "-----Original Message-----" or forwarded-message marker (Lotus Notes' "Forwarded by"
  too), an Outlook header block ("From: / Sent: / To: / Subject:" and its German,
  French, Spanish, Italian, Dutch and Nordic forms) or a Lotus Notes one (sender and date
  lines, then "To:", "cc:", "Subject:"). ">"-quoted lines are skipped wherever
  they are, so inline and bottom-posted answers survive: when an attribution is followed
  by a ">" block, only the block is dropped and reading goes on after it.
* **Signatures.** A "-- " (or bare "--", or "—") delimiter line and a line of underscores
  cut the text, as does a device line ("Sent from my iPhone", "Get Outlook for iOS",
  "Von meinem iPhone gesendet"), recognised only as a short line of its own: "Sent from my
  desk, is much easier" stays. A closing ("Regards,", "Best,", "Thanks,\\nName") is dropped
  only when nothing but a short name/title/phone block follows it and real content comes
  before it.
* **Never cut real content.** Precision matters more than tidiness: the excerpt feeds a
  follow-up that quotes the prospect, so a wrong cut loses their words while a kept
  signature line only costs a few characters. Patterns are therefore anchored to whole
  lines and need corroboration (a date or an address in an attribution, three header
  fields in a block); "wrote:" in the middle of a sentence, a "From:" inside a sentence
  and ``` fenced code are left alone.
* **Nothing written, nothing kept.** A body that is all history (a forward with no comment,
  an attribution followed by unmarked quoted text) yields "": better no excerpt than
  someone else's words attributed to the prospect.

The result has its whitespace normalised (runs of blanks collapsed, one empty line at most
between paragraphs) and is cut to `max_chars` at a word boundary. `reply_text` never
raises: every pattern works on one line (or a join of at most five short ones), so the time
is linear in the size of the input, and a body past `MAX_BODY_CHARS` is read only that far.
"""

from __future__ import annotations

import re

__all__ = ["MAX_BODY_CHARS", "reply_text"]

# A text part past this size is an attachment pasted inline or junk; the new text, which
# comes first, is read from its start.
MAX_BODY_CHARS = 2_000_000
_MAX_HEADER_LINE = 400  # attribution and header patterns only look at lines up to this long
_MAX_ATTRIBUTION_LINES = 5
_HEADER_WINDOW = 8
_MAX_NAME_BLOCK_LINES = 6
# New text read past the excerpt's end, so that a closing or signature starting inside the
# excerpt is still recognised as one (a name block is at most 7 short lines).
_LOOKAHEAD_CHARS = 1000

_ON_WORDS = (
    r"on|at|le|am|el|il|op|em|den|dne|dnia|w\s+dniu|p[åa]|in\s+data|el\s+d[íi]a|"
    r"l'|a\s+las|alle"
)
# Starts an attribution line: "On", "Le", "Am", ... (optionally after "----" or "*").
_ATTRIBUTION_START = re.compile(rf"^\s*[-*_]*\s*(?:{_ON_WORDS})\b", re.IGNORECASE)
_WROTE_VERBS = (
    r"wrote|writes|a\s+[ée]crit|schrieb|escribi[óo]|ha\s+scritto|scrisse|schreef|"
    r"het\s+volgende\s+geschreven|escreveu|napisa[łl]\s*\(a\)|napisa[łl]a?|skrev|kirjoitti|"
    r"[íi]rta|написал\s*\(а\)|написала?|пише|написав|yazd[ıi]|napsal\s*\(a\)|napsal|"  # noqa: RUF001
    r"写道|寫道"
)
_ENGLISH_VERB = re.compile(r"\b(?:wrote|writes)\b", re.IGNORECASE)
# The end of an attribution: the verb, then at most a short tail ("schrieb am Fr., 28.
# Apr. 2017 um 11:53 Uhr") and a colon, or the verb alone at the end ("... wrote", zoho's
# "... wrote ----").
_ATTRIBUTION_END = re.compile(
    rf"(?:{_WROTE_VERBS})(?:[^\n]{{0,120}}?[:\uff1a]|\s*[:\uff1a]?)\s*-*\s*$", re.IGNORECASE
)
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_BRACKETED_EMAIL = re.compile(r"[<(\[]\s*(?:mailto:)?[^<>()\[\]\s@]+@[^<>()\[\]\s]+\s*[>)\]]")
_DIGIT = re.compile(r"\d")
_YEAR_TIME_OR_ADDRESS = re.compile(r"\d{1,2}[:.h]\d{2}|\b\d{4}\b|@")
# "<date>, <name> <address>:" begins with a number, or a weekday or month then a number.
_DATE_FIRST = re.compile(r"^\s*(?:\d|[^\W\d_]{2,12}\.?,?\s+\d)")
# Gmail's old attribution: "2013/7/20 Name <address>" and "2016-03-03 17:21 GMT+01:00 Name".
_GMAIL_DATED = re.compile(
    r"^\s*(?:\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}\s+GMT[+-]\d{1,2}(?::?\d{2})?\b|"
    r"\d{4}/\d{1,2}/\d{1,2}\s+.*<[^<>\s@]+@[^<>\s]+>\s*$)"
)
# A word, then sentence-final punctuation: a line ending like this ends a paragraph, so an
# attribution never starts before it.
_SENTENCE_END = re.compile(r"[^\W\d_]{2}\s?[.!?\u2026]+[\"')\]]*\s*$")
# A sentence boundary inside a line ("... might be it. Regretfully ..."): prose, not a header.
_SENTENCE_BREAK = re.compile(r"[^\W\d_]{2}\s?[.!?\u2026]+\s+[A-Z][a-z]")

_MARKER_PHRASES = (
    r"original\s+message|urspr[üu]ngliche\s+nachricht|message\s+d'origine|mensaje\s+original|"
    r"messaggio\s+originale|oorspronkelijk\s+bericht|oprindelig\s+besked|"
    r"ursprungligt\s+meddelande|opprinnelig\s+melding|mensagem\s+original|"
    r"alkuper[äa]inen\s+viesti|oryginalna\s+wiadomo[śs][ćc]|исходное\s+сообщение|"
    r"forwarded\s+message|weitergeleitete\s+nachricht|message\s+transf[ée]r[ée]|"
    r"mensaje\s+reenviado|messaggio\s+inoltrato|doorgestuurd\s+bericht|"
    r"videresendt\s+(?:besked|melding)|vidarebefordrat\s+meddelande|"
    r"пересылаемое\s+сообщение|mensagem\s+encaminhada|reply\s+separator"
)
_HISTORY_MARKER = re.compile(
    rf"^\s*[-=_*\s]*(?:{_MARKER_PHRASES})(?:\s+follows)?\s*[-=_*:\s]*$|"
    r"^\s*[-=_*\s]*(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée]|inicio\s+del\s+mensaje\s+reenviado)\s*:?\s*$|"
    r"^\s*-{3,}\s*forwarded\s+by\s",
    re.IGNORECASE,
)

_HEADER_FIELDS: dict[str, str] = {
    "from": r"from|von|de|da|van|fra|fr[åa]n|od|от|l[äa]hett[äa]j[äa]|kimden|felad[óo]|"
    r"发件人|寄件者|absender",
    "date": r"sent|date|datum|gesendet|envoy[ée](?:\s+le)?|enviado(?:\s+el)?|fecha|inviato|"
    r"data|verzonden|dato|sendt|skickat|wys[łl]ano|wys[łl]ane|отправлено|дата|"
    r"l[äa]hetetty|p[äa]iv[äa]m[äa][äa]r[äa]|g[öo]nderildi|tarih|message\s+du|"
    r"发送时间|日期|enviada",
    "to": r"to|an|[àa]|para|aan|til|till|do|кому|vastaanottaja|kime|收件人|cc|kopie|"
    r"copie(?:\s+[àa])?|cco|bcc|kopia|копия|reply-to|antwort\s+an|r[ée]pondre\s+[àa]|"
    r"risposta",
    "subject": r"subject|betreff|objet|asunto|oggetto|onderwerp|emne|[äa]mne|temat|тема|"
    r"aihe|konu|主题|主旨|assunto|sujet",
}
_HEADER_LINE = re.compile(
    r"^\s*[*_]*(?:"
    + "|".join(f"(?P<{name}>{pattern})" for name, pattern in _HEADER_FIELDS.items())
    + r")[*_]*\s*[:\uff1a]",
    re.IGNORECASE,
)
# Lotus Notes prints "To:", "cc:" and "Subject:" (often in a second column, after the
# sender's name, address and date), with no "From:" line.
_NOTES_TO = re.compile(r"(?:^|\s)To:\s", re.IGNORECASE)
_NOTES_CC = re.compile(r"(?:^|\s)cc:", re.IGNORECASE)
_NOTES_SUBJECT = re.compile(r"(?:^|\s)Subject:", re.IGNORECASE)
_NOTES_WINDOW = 6
# Lines Notes puts before the block or leaves above it: "Jane Doe@ECT", "04/23/2001 02:06 PM",
# "Please respond to jane", "(Embedded\nimage moved ... to file: pic30498.pcx)".
_NOTES_ARTIFACT = re.compile(
    r"^\S[^\s@]*@\S*$|^[\w .,'\"-]{1,40}@[\w.-]+$|^\d{1,2}/\d{1,2}/\d{2,4}(?:\s+\d{1,2}:\d{2}.*)?$|"
    r"^(?:AM|PM)$|^please respond to\b|^\(embedded$|^image moved\b|^to file:|\.pcx\)$",
    re.IGNORECASE,
)

_SIGNATURE_DELIMITER = re.compile(r"^(?:--|\u2014|\u2013|_{2,}|\u2014{2,})\s*$")
_FENCE = re.compile(r"^\s*```")
# Supercite-style quoting by initials ("C> text"); full names ("Richard>") are too risky.
_INITIALS_QUOTE = re.compile(r"^\s*[A-Za-z]{1,3}>(?:\s|$)")

# A device line: "Sent from my iPhone", "Sent with Airmail", "Get Outlook for iOS",
# "Envoyé de mon iPhone", "Von meinem iPhone gesendet", "(Sent from mobile device)".
_DEVICE_LINE = re.compile(
    r"^[\W_]*(?:"
    r"(?:sent|sendt)\s+(?:from|via|with|using|by|fra)\b(?P<tail>.*)|"
    r"(?:envoy[ée]\s+(?:de|depuis|[àa]\s+partir\s+de|avec)|enviado\s+(?:desde|de|con)|"
    r"inviato\s+da|verzonden\s+(?:met|vanaf|van)|verstuurd\s+(?:vanaf|met|van)|"
    r"skickat\s+fr[åa]n|wys[łl]ane\s+z|отправлено\s+с|"  # noqa: RUF001
    r"gesendet\s+(?:von|mit|vom))\b(?P<tail2>.*)|"
    r"get\s+(?:outlook|the\s+\w+\s+app)\s+for\b.*|"
    r"(?:diese\s+nachricht\s+wurde\s+)?von\s+meinem\s+.{1,60}\s+gesendet\W*|"
    r"from\s+my\s+(?:iphone|ipad|android|blackberry|mobile|phone|smartphone|galaxy|samsung|"
    r"pixel|cell|tablet)\b.{0,30}|"
    r"发自我的.{0,20}|寄自我的.{0,20}|从我的.{0,20}发送|.{0,20}から送信"
    r")$",
    re.IGNORECASE,
)
_LINK = re.compile(r"<[^<>]*>|\(https?:[^()]*\)|\[([^\]]*)\]\([^()]*\)")
_EXCUSE = re.compile(r"^\W*(?:please\s+)?(?:excuse|pardon|forgive|sorry\s+for)\b", re.IGNORECASE)

_CLOSING = re.compile(
    r"^\W*(?i:(?:(?:very\s+)?(?:best|kind|kindest|warm|warmest|many|with\s+(?:kind|best)|"
    r"with\s+warm)\s+)?regards|best(?:\s+wishes)?|all\s+the\s+best|cheers|"
    r"(?:many\s+)?thanks(?:\s+(?:again|so\s+much|a\s+lot|in\s+advance))?|"
    r"thank\s+you(?:\s+(?:again|so\s+much|in\s+advance))?|sincerely(?:\s+yours)?|"
    r"yours(?:\s+(?:sincerely|truly))?|talk\s+soon|speak\s+soon|take\s+care|"
    r"mit\s+freundlichen\s+gr[üu](?:ß|ss)en|(?:freundliche|viele|beste|liebe|sch[öo]ne)\s+"
    r"gr[üu](?:ß|ss)e|gru(?:ß|ss)|gr[üu](?:ß|ss)e|lg|vg|mfg|cordialement|bien\s+cordialement|"
    r"bien\s+[àa]\s+vous|salutations|saludos(?:\s+cordiales)?|un\s+saludo|atentamente|"
    r"cordiali\s+saluti|distinti\s+saluti|saluti|met\s+vriendelijke\s+groet(?:en)?|groeten|"
    r"med\s+v[äa]nliga\s+h[äa]lsningar|h[äa]lsningar|mvh|med\s+venlig\s+hilsen)"
    r"(?P<after>[\s,.!;:-]*(?:[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,2}|[^\w\s]{1,4})?)\s*$"
)
_FIRST_PERSON = re.compile(r"\b(?:I|I'\w+|[Ww]e|[Ww]e'\w+|will|would|shall|can|let|please)\b")
_POSTSCRIPT = re.compile(r"^\W*p\.?\s?s\b", re.IGNORECASE)
# Blank-ish characters: tabs, no-break and zero-width spaces, which mail clients sprinkle.
_BLANKS = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]+")
# Lines with nothing but these are separators or tracking marks (Gmail's "ᐧ"), not content.
_JUNK_CHARACTERS = frozenset(
    "-_=*#~+.:|<>[](){}/\\\u2022\u00b7\u1427\u2010\u2011\u2012\u2013\u2014\u2015"
)


def reply_text(body: str, *, max_chars: int = 500) -> str:
    """The new text of a reply `body`, quotes and signature removed, at most `max_chars` long.

    `max_chars=0` (excerpts disabled) gives "". Never raises, whatever `body` holds.
    """
    try:
        if not isinstance(body, str) or max_chars <= 0:
            return ""
        return _truncate(_normalise(_new_lines(body, max_chars + _LOOKAHEAD_CHARS)), max_chars)
    except Exception:  # an excerpt is optional: a body no rule foresaw must not stop a sync
        return ""


def _new_lines(body: str, enough: int) -> list[str]:
    """The lines the sender wrote: history cut, quoted lines skipped, signature dropped.

    Reading stops once `enough` characters of new text are in hand: what follows could
    only be cut, never change the start.
    """
    text = body[:MAX_BODY_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    kept: list[str] = []
    kept_chars = 0
    in_fence = False
    previous_quoted: str | None = None  # the last line, when it was quoted
    index = 0
    while index < len(lines) and kept_chars < enough:
        line = lines[index]
        if not line or line.isspace():
            if kept and kept[-1]:
                kept.append("")
            previous_quoted = None
            index += 1
            continue
        stripped = _BLANKS.sub(" ", line).strip()
        fence = _FENCE.match(line) is not None
        if fence or in_fence:
            in_fence = in_fence != fence
            kept.append(line)
            kept_chars += len(stripped) + 1
            previous_quoted = None
            index += 1
            continue
        if _is_quoted(line) or _is_lazy_continuation(stripped, previous_quoted):
            previous_quoted = stripped
            index += 1
            continue
        previous_quoted = None
        header_end = _attribution_end(lines, index)
        if header_end is not None:
            following = _next_non_blank(lines, header_end + 1)
            if following is not None and _is_quoted(lines[following]):
                index = following  # only the quote block is history; read on after it
                continue
            break
        if _HISTORY_MARKER.match(stripped) or _is_header_block(lines, index):
            break
        if _is_notes_block(lines, index):
            _drop_notes_artifacts(kept)
            break
        if _SIGNATURE_DELIMITER.match(stripped) or _is_device_line(stripped):
            break
        kept.append(stripped)
        kept_chars += len(stripped) + 1
        index += 1
    return _without_closing(_without_trailing_junk(kept))


def _drop_notes_artifacts(kept: list[str]) -> None:
    while kept and (not kept[-1] or _NOTES_ARTIFACT.search(kept[-1])):
        kept.pop()


def _is_quoted(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith((">", "&gt;")) or bool(_INITIALS_QUOTE.match(stripped))


def _is_lazy_continuation(stripped: str, previous_quoted: str | None) -> bool:
    """A wrapped quoted line whose continuation lost its ">" ("> ... Nullam d\\nignissim")."""
    return previous_quoted is not None and len(previous_quoted) >= 50 and stripped[:1].islower()


def _next_non_blank(lines: list[str], start: int) -> int | None:
    for index in range(start, min(len(lines), start + 20)):
        if lines[index].strip():
            return index
    return None


def _attribution_end(lines: list[str], start: int) -> int | None:  # noqa: PLR0911, PLR0912
    """The last line of an attribution ("On ... wrote:") that begins at `start`, or None."""
    first = lines[start]
    if len(first) > _MAX_HEADER_LINE:
        return None
    if _GMAIL_DATED.match(first):
        return start
    starts_like_header = bool(_ATTRIBUTION_START.match(first)) and bool(_DIGIT.search(first))
    if not starts_like_header:
        # An undated or date-first attribution opens a paragraph, and its first line holds
        # the date or the address: "Hello\n<date> <name> <address> wrote:" keeps "Hello".
        opens_paragraph = start == 0 or not lines[start - 1].strip()
        complete = "@" in first and _ATTRIBUTION_END.search(first) is not None
        if not (opens_paragraph or complete or _DATE_FIRST.match(first)):
            return None
        if not (_DIGIT.search(first) or "@" in first) or _SENTENCE_BREAK.search(first):
            return None
    parts: list[str] = []
    crossed_blank = False
    for end in range(start, min(len(lines), start + _MAX_ATTRIBUTION_LINES)):
        line = lines[end]
        if len(line) > _MAX_HEADER_LINE:
            return None
        part = _BLANKS.sub(" ", line).strip()
        if end > start and _is_quoted(line):
            part = part.lstrip("> ")
            if len(part) > 20:
                return None  # a quote, not the tail of a wrapped header ("> wrote:")
        if not part:
            crossed_blank = True
            continue
        if parts and _SENTENCE_END.search(parts[-1]):
            return None  # the previous line ended a sentence: this is prose, not a header
        parts.append(part)
        joined = " ".join(parts)
        if len(joined) > 350:
            return None
        if _is_attribution(joined, starts_like_header, crossed_blank):
            return end
    return None


def _is_attribution(joined: str, starts_like_header: bool, crossed_blank: bool) -> bool:
    ends_with_verb = _ATTRIBUTION_END.search(joined)
    if ends_with_verb is not None:
        if starts_like_header:
            # "On Mon, Feb 1, 2016 at 6:32 PM, Jeff <...>\nwrote:" has a year, a time or an
            # address; "On 3/15 I wrote:" (a person quoting themselves) has none.
            return bool(_YEAR_TIME_OR_ADDRESS.search(joined))
        if crossed_blank or _SENTENCE_BREAK.search(joined, 0, ends_with_verb.start()):
            return False
        if _EMAIL.search(joined):
            return True  # "Some One <info@example.org> wrote:", "Max <m@x.de> schrieb am ...:"
        english = _ENGLISH_VERB.search(ends_with_verb.group(0)) is not None
        # Russian Gmail: "<weekday>, 6 <month> 2014 <year mark> <user> lidel <wrote>:"
        return not english and bool(_DIGIT.search(joined))
    # "30.09.2017, 18.30, "John" <john@example.com>:" and "Wednesday, 17 November 2021, ...:"
    return (
        not crossed_blank
        and joined.endswith((":", "\uff1a"))
        and bool(_DATE_FIRST.match(joined))
        and bool(_BRACKETED_EMAIL.search(joined))
        and len(joined) <= 250
    )


def _is_header_block(lines: list[str], start: int) -> bool:
    """Whether an Outlook-style header block ("From: / Sent: / To: / Subject:") starts here."""
    if len(lines[start]) > _MAX_HEADER_LINE:
        return False
    first = _HEADER_LINE.match(_BLANKS.sub(" ", lines[start]))
    if first is None or first.lastgroup not in ("from", "date"):
        return False
    fields: list[str] = []
    for line in lines[start : start + _HEADER_WINDOW]:
        if len(line) > _MAX_HEADER_LINE:
            break
        found = _HEADER_LINE.match(_BLANKS.sub(" ", line))
        if found is not None and found.lastgroup is not None:
            fields.append(found.lastgroup)
    kinds = set(fields)
    return len(fields) >= 3 and "from" in kinds and len(kinds) >= 3


def _is_notes_block(lines: list[str], start: int) -> bool:
    """Whether a Lotus Notes header block starts here: sender lines, then To:, cc:, Subject:."""
    for to_line in range(start, min(len(lines), start + 4)):
        line = lines[to_line]
        if len(line) > _MAX_HEADER_LINE or not line.strip():
            return False
        if _NOTES_TO.search(line):
            window = lines[to_line : to_line + _NOTES_WINDOW]
            return any(_NOTES_CC.search(later) for later in window) and any(
                _NOTES_SUBJECT.search(later) for later in window
            )
        if not _is_notes_sender_line(_BLANKS.sub(" ", line).strip()):
            return False
    return False


def _is_notes_sender_line(stripped: str) -> bool:
    """A line of the sender column before Notes' "To:" ("Phillip.K.Allen@enron.c")."""
    if len(stripped) > 60 or _SENTENCE_END.search(stripped):
        return False
    return "@" in stripped or bool(_DIGIT.search(stripped)) or len(stripped) <= 30


def _is_device_line(stripped: str) -> bool:
    """ "Sent from my iPhone" on a line of its own (not "Sent from my desk, is much easier")."""
    if len(stripped) > 120:
        return False
    plain = _LINK.sub(lambda found: found.group(1) or "", stripped).strip()
    found = _DEVICE_LINE.match(plain)
    if found is None:
        return False
    tail = found.group("tail") or found.group("tail2")
    if tail is None:
        return True
    clause, comma, rest = tail.partition(",")
    if comma and not _EXCUSE.match(rest):
        return False  # a sentence goes on after the comma: "Sent from my desk, is much ..."
    return len(clause.split()) <= 6


def _without_trailing_junk(kept: list[str]) -> list[str]:
    end = len(kept)
    while end > 0 and (not kept[end - 1].strip() or _is_junk(kept[end - 1])):
        end -= 1
    return kept[:end]


def _is_junk(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and all(
        character in _JUNK_CHARACTERS or character.isspace() for character in stripped
    )


def _without_closing(kept: list[str]) -> list[str]:
    """Drop a closing ("Best regards,\\nDana Reyes\\nAcmeSoft") that ends the new text.

    Only when a short name/title/phone block (or nothing, after a comma) follows it, and
    real content comes before it: "Thanks!" alone, or "thanks" ending a sentence, stays.
    """
    non_blank = [index for index, line in enumerate(kept) if line.strip()]
    last_candidate = max(-1, len(non_blank) - 2 - _MAX_NAME_BLOCK_LINES)
    for position in range(len(non_blank) - 1, last_candidate, -1):
        index = non_blank[position]
        found = _CLOSING.match(kept[index].strip())
        if found is None:
            continue
        block = [kept[later].strip() for later in non_blank[position + 1 :]]
        if position == 0:
            return kept  # nothing before the closing: it is the message
        if not all(_is_name_line(line) for line in block):
            return kept
        if not block and not found.group("after").strip().startswith(","):
            return kept  # "Best Regards" or "thanks" ending the text: keep it
        return _without_trailing_junk(kept[:index])
    return kept


def _is_name_line(line: str) -> bool:
    """A line of a signature block: a name, title, company, phone, address or link.

    Anything that reads like a sentence is not ("Will call you Monday.", "we decide in
    March"): a closing followed by one is kept, so the sentence is never lost.
    """
    words = [word for word in line.split() if any(character.isalnum() for character in word)]
    if len(line) > 60 or len(words) > 7 or _POSTSCRIPT.match(line) or line.endswith("?"):
        return False
    if _FIRST_PERSON.search(line):
        return False
    lowercase_words = sum(1 for word in words if word[:1].islower() and len(word) > 1)
    if line.endswith((".", "!")) and len(words) >= 3 and lowercase_words:
        return False
    return lowercase_words < 5


def _normalise(kept: list[str]) -> str:
    lines: list[str] = []
    for line in kept:
        cleaned = _BLANKS.sub(" ", line).strip()
        if cleaned or (lines and lines[-1]):
            lines.append(cleaned)
    return "\n".join(lines).strip()


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if boundary <= 0:
        return text[:max_chars].rstrip()
    return cut[:boundary].rstrip()
