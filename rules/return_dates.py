"""The day an out-of-office reply says its sender is back (SPEC section 4).

`classify` calls `return_date` on every auto-reply it finds and stores the result in
`Classification.return_date`; follow-ups then wait until after that day (`snoozed`,
SPEC sections 3 and 5). Like the rest of `rules/`, nothing here reads the clock: every
date is read relative to the reply's own `Message.at`. Theory of operation:

* **Only absences.** An auto-acknowledgement ("we received your request on 12/03") names
  dates too, but no return: unless the subject or excerpt reads like an absence notice
  (`ABSENCE_TEXT`, which `classify` also uses to confirm ambiguous subjects such as a bare
  "Out of office"), there is no date to read.
* **Many shapes.** An out-of-office text names its end in many shapes: "back on Monday 7
  December", "until 5/31/01", "zurück am 7.12.", "de retour le 7 décembre", "de vuelta el
  7 de diciembre".
* **Relative to the reply.** Every date-like token is read relative to the reply's own
  date: a day without a year is its next occurrence (at most ~6 months ahead), an
  ambiguous 12/07 is whichever of December 7 or July 12 comes first, a date before the
  reply is stale and dropped.
* **Which date.** The latest date near a return word ("back", "until", "wieder",
  "retour", "hasta", ...) wins, else the latest date at all, else a weekday or "tomorrow"
  near a return word. The excerpt is read first, the subject only when the excerpt names
  nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from rules.message import Message

__all__ = ["ABSENCE_TEXT", "read_return_date", "return_date"]

ABSENCE_TEXT = re.compile(
    r"out of (?:the )?office|on (?:annual |parental |sick |maternity |paternity )?leave|"
    r"on (?:vacation|holidays?)|away from (?:the office|my desk)|limited access to e-?mail|"
    r"(?:will|shall) be back|i am away|i'm away|currently away|not in the office|"
    r"automatic reply|auto-?reply|abwesend|nicht im b[üu]ro|au(?:ss|ß)er haus|urlaub|"
    r"wieder (?:im b[üu]ro|erreichbar|da)|absente?\b|en cong[ée]s?|en vacances|de retour|"
    r"fuera de (?:la )?oficina|de vacaciones|ausente|de vuelta|fuori (?:ufficio|sede)|"
    r"in ferie|assente|afwezig|met vakantie|niet op kantoor|vacation|holiday|"
    r"(?:will|shall) return|returning|back in the office",
    re.IGNORECASE,
)


def return_date(message: Message) -> date | None:
    """The day an out-of-office `message` says its sender is back, or None."""
    if not ABSENCE_TEXT.search(f"{message.subject}\n{message.excerpt or ''}"):
        return None  # an auto-acknowledgement or notice, not an absence: no date to read
    if message.excerpt:
        found = read_return_date(message.excerpt, message.at)
        if found is not None:
            return found
    return read_return_date(message.subject, message.at)


_MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            "january jan januar jänner janvier janv enero ene gennaio januari janeiro",
            "february feb februar février fevrier févr fevr febrero febbraio februari fevereiro",
            "march mar märz maerz mars marzo maart mrt março marco",
            "april apr avril avr abril abr aprile",
            "may mai mayo maggio mei maio maj",
            "june jun juni juin junio giugno junho",
            "july jul juli juillet juil julio luglio julho",
            "august aug août aout agosto augustus augusti",
            "september sep sept septembre septiembre setiembre settembre setembro",
            "october oct oktober okt octobre octubre ottobre outubro",
            "november nov novembre noviembre novembro",
            "december dec dezember dez décembre decembre déc diciembre dic dicembre dezembro",
        ),
        start=1,
    )
    for name in names.split()
}
_WEEKDAYS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            "monday montag lundi lunes lunedì lunedi maandag måndag",
            "tuesday dienstag mardi martes martedì martedi dinsdag tisdag",
            "wednesday mittwoch mercredi miércoles miercoles mercoledì mercoledi woensdag onsdag",
            "thursday donnerstag jeudi jueves giovedì giovedi donderdag torsdag",
            "friday freitag vendredi viernes venerdì venerdi vrijdag fredag",
            "saturday samstag samedi sábado sabado sabato zaterdag lördag",
            "sunday sonntag dimanche domingo domenica zondag söndag",
        )
    )
    for name in names.split()
}


def _alternatives(names: dict[str, int]) -> str:
    """The names as one regex, factored by common prefix ("ma(?:r(?:ch|s|...)|...)").

    A flat list is tried name after name at every word of every auto-reply; the
    factored form decides on the first letters. Every use ends a name at a word boundary
    and names are all letters, so a match runs to the end of its word: one name at most
    can match there, and the order of the alternatives cannot matter.
    """
    trie: dict[str, Any] = {}
    for name in names:
        node = trie
        for character in name:
            node = node.setdefault(character, {})
        node[""] = {}
    return _trie_pattern(trie)


def _trie_pattern(node: dict[str, Any]) -> str:
    branches = [re.escape(key) + _trie_pattern(child) for key, child in node.items() if key]
    if not branches:
        return ""
    if len(branches) == 1 and "" not in node:
        return branches[0]
    return "(?:" + "|".join(branches) + ")" + ("?" if "" in node else "")


_MONTH = rf"(?:{_alternatives(_MONTHS)})"
_DAY = r"[0-3]?\d(?:st|nd|rd|th|er|e|º)?"
_DATE_TOKEN = re.compile(
    # Every shape starts with a digit or at a word boundary: skip the other places at once.
    r"(?=\d|\b)(?:"
    # 2020-12-07, 2020/12/07
    r"(?P<iso>(?<!\d)(?P<iso_y>\d{4})([-/.])(?P<iso_m>[01]?\d)\3(?P<iso_d>[0-3]?\d)(?!\d))"
    # 7 December, 7. Dezember 2020, 7 de diciembre, 19-21 November
    rf"|(?P<dmy>(?<!\d)(?:{_DAY}\.?\s*[-\u2013]\s*)?(?P<dmy_d>[0-3]?\d)(?:st|nd|rd|th|er|e|º)?\.?\s*"
    rf"(?:de\s+|of\s+|di\s+)?(?P<dmy_m>{_MONTH})\b\.?(?:,?\s*(?:de\s+)?(?P<dmy_y>\d{{4}})(?!\d))?)"
    # December 7th, 2020; Nov. 19-21, 2001
    rf"|(?P<mdy>\b(?P<mdy_m>{_MONTH})\b\.?\s*(?:the\s+)?(?:{_DAY}\s*[-\u2013]\s*)?(?P<mdy_d>[0-3]?\d)"
    r"(?:st|nd|rd|th)?(?!\d)(?:,?\s*(?P<mdy_y>\d{4})(?!\d))?)"
    # 7.12. / 7.12.2020 (day first), 03.22.02 (month first when the day-first reading fails)
    r"|(?P<dot>(?<![\d.])(?P<dot_a>[0-3]?\d)\.\s?(?P<dot_b>[0-3]?\d)(?:\.\s?(?P<dot_y>\d{4}|\d\d)"
    r"(?![\d.]\d)|\.|(?![\d.])))"
    # 12/07, 12/07/20, 12-07-2020: month or day first, whichever comes sooner
    r"|(?P<num>(?<![\d/])(?P<num_a>[0-3]?\d)(?P<sep>[/-])(?P<num_b>[0-3]?\d)"
    r"(?:(?P=sep)(?P<num_y>\d{4}|\d\d))?(?![\d/])(?!\.\d))"
    # the 18th
    r"|(?P<nth>\bthe\s+(?P<nth_d>[0-3]?\d)(?:st|nd|rd|th)\b)"
    rf"|(?P<weekday>\b(?:{_alternatives(_WEEKDAYS)})\b)"
    r"|(?P<tomorrow>\b(?:tomorrow|demain|domani)\b))",
    re.IGNORECASE,
)
_RETURN_WORD = re.compile(
    r"\b(?:back|return(?:s|ing|ed)?|resum(?:e|ing)|until|till|til|through|thru|"
    r"reachable|available again|in the office on|zur[üu]ck|wieder|bis|retour|"
    r"jusqu'?\s?(?:au|à|a)|reviens|rentre(?:rai)?|vuelta|regres\w*|volver\w*|hasta|rientr\w*|"
    r"ritorno|torner\w*|fino\s+al?|terug|tot(?:\s+en\s+met)?|weer|tillbaka|åter|até)\b",
    re.IGNORECASE,
)
_RETURN_WINDOW_BEFORE = 60
_RETURN_WINDOW_AFTER = 30
_YEARLESS_HORIZON = timedelta(days=183)
_DATED_HORIZON = timedelta(days=366)


def read_return_date(text: str, at: datetime) -> date | None:
    """The day an out-of-office text says its sender is back, or None."""
    today = at.date()
    anchored: list[date] = []
    dated: list[date] = []
    loose: list[date] = []
    for token in _DATE_TOKEN.finditer(text):
        when = _resolve(token, today)
        if when is None:
            continue
        near_return = (
            _RETURN_WORD.search(
                text,
                max(0, token.start() - _RETURN_WINDOW_BEFORE),
                min(len(text), token.end() + _RETURN_WINDOW_AFTER),
            )
            is not None
        )
        if token.lastgroup in ("weekday", "tomorrow"):
            if near_return:
                loose.append(when)
        else:
            dated.append(when)
            if near_return:
                anchored.append(when)
    for candidates in (anchored, dated, loose):
        if candidates:
            return max(candidates)
    return None


def _resolve(token: re.Match[str], today: date) -> date | None:  # noqa: PLR0911 (one per shape)
    group = token.group
    kind = token.lastgroup
    if kind == "weekday":
        weekday = _WEEKDAYS[group("weekday").lower()]
        return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    if kind == "tomorrow":
        return today + timedelta(days=1)
    if kind == "iso":
        when = _nearest(int(group("iso_y")), int(group("iso_m")), int(group("iso_d")), today)
        return _ahead(when, today, dated=True)
    if kind in ("dmy", "mdy"):
        year = group(f"{kind}_y")
        month = _MONTHS[group(f"{kind}_m").lower()]
        when = _nearest(int(year) if year else None, month, int(group(f"{kind}_d")), today)
        return _ahead(when, today, dated=year is not None)
    if kind == "nth":
        return _ahead(_nearest_in_month(int(group("nth_d")), today), today, dated=False)
    if kind == "dot":
        first, second, year = int(group("dot_a")), int(group("dot_b")), group("dot_y")
        day, month = (first, second) if second <= 12 else (second, first)
        when = _nearest(_year(year, today), month, day, today)
        return _ahead(when, today, dated=year is not None)
    # 12/07 or 12-07: month first (US) or day first, whichever lies closer to the reply;
    # the start of a range is usually just behind it, the end just ahead.
    first, second, year = int(group("num_a")), int(group("num_b")), group("num_y")
    readings = [
        when
        for month, day in ((first, second), (second, first))
        if (when := _nearest(_year(year, today), month, day, today)) is not None
    ]
    closest = min(readings, key=lambda when: abs(when - today), default=None)
    return _ahead(closest, today, dated=year is not None)


def _year(text: str | None, today: date) -> int | None:
    if text is None:
        return None
    year = int(text)
    if year < 100:
        year += 2000 if 2000 + year <= today.year + 1 else 1900
    return year


def _nearest(year: int | None, month: int, day: int, today: date) -> date | None:
    """The calendar day meant: as written, or without a year the occurrence nearest today."""
    if year is not None:
        return _safe_date(year, month, day)
    candidates = (_safe_date(y, month, day) for y in (today.year - 1, today.year, today.year + 1))
    return min(
        (when for when in candidates if when is not None),
        key=lambda when: abs(when - today),
        default=None,
    )


def _nearest_in_month(day: int, today: date) -> date | None:
    """ "the 18th": this month's if not past, else next month's."""
    this_month = _safe_date(today.year, today.month, day)
    if this_month is not None and this_month >= today:
        return this_month
    next_month = today.replace(day=1) + timedelta(days=32)
    return _safe_date(next_month.year, next_month.month, day)


def _ahead(when: date | None, today: date, *, dated: bool) -> date | None:
    """`when` if it is not before the reply and not absurdly far ahead, else None."""
    horizon = _DATED_HORIZON if dated else _YEARLESS_HORIZON
    if when is None or not today <= when <= today + horizon:
        return None
    return when


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
