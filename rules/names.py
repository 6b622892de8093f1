"""The prospect's first name, for a draft's greeting ("Hi Jürgen," rather than "Hi,").

`first_name(display_name, address)` reads the decoded display name first and the address
only when the name gives nothing. Theory of operation:

* **Display names.** Brackets, inner quotes and anything after a separator ("| ACME",
  "via LinkedIn") are dropped; "Last, First" is told from "First Last, Company" by the
  number of words before the comma; titles ("Dr.", "Frau") and credentials ("PhD") go;
  an all-caps word among mixed-case ones is a surname ("Jürgen MÜLLER"). A leading
  initial is skipped only when two more words follow ("J. Robert Smith"). One word alone
  is trusted only when it is a known first name or opens the address ("Anna" with
  anna.s@...), and never after a title ("Dr. Schmidt" names no first name).
* **Addresses.** "firstname.lastname" is the common convention: the first part counts
  when it is a known first name, or an unknown word of three letters or more whose next
  part is not a known first name ("mueller.juergen" may be Last.First: no name). A local
  part of one piece counts only when it is a known first name ("anna" yes, "jsmith" no);
  an initial ("j.mueller") is not a name.
* **Never a name.** Role mailboxes and team or company names ("info", "Sales Team",
  "ACME GmbH"), addresses in the name field, scripts written without spaces (Chinese,
  Japanese), anything with digits.

Precision over recall: a wrong name in a greeting embarrasses the rep, "Hi," does not.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["first_name"]

# Common given names, compared folded (see `_fold`): enough to trust a bare local part
# ("anna@") or a one-word display name. Not exhaustive, and need not be.
_KNOWN_FIRST_NAMES_TEXT = """
aaron abby adam adrian adriana agnes ahmed aidan aisha alan albert alberto alejandro alex
alexander alexandra alexis alfred ali alice alicia alina alison amanda amber amelie amir amit
amy ana anastasia andre andrea andreas andrei andrew andy angela angelika angelo anika anita
anja ann anna annabel anne annette annika anthony anton antonio anya arjun armin arne arnaud
arthur ashley astrid axel barbara bart beate beatrice ben benedikt benjamin bernd bernhard
beth bettina bianca bill birgit bjorn bob brad brandon brenda brian britta bruno caitlin
camille carl carla carlos carmen carol carolina caroline carsten catherine cecile celine
chad charles charlie charlotte chen chloe chris christa christian christina christine
christoph christopher claire clara claudia colin conor constance cornelia craig cristina
dan dana daniel daniela danielle daria dave david dean debbie deborah denis denise dennis
derek diana diego dieter dimitri dirk dominik dominique donna doris dorothea doug douglas
dylan ed edward elena eleni elias elisa elisabeth eliza elizabeth ella ellen elke emil
emilia emily emma enrico eric erik erika erin ernst esther ethan eva eve evelyn fabian
fabio fatima felix fernando filip fiona florian francesca francesco francisco frank franz
franziska fred frederic frederik frida friedrich gabriel gabriele gabriela gary georg george
georgia gerald gerhard gina giorgio giovanni giulia giuseppe gordon grace greg gregor
gregory gudrun guido gunter gustav hana hannah hannes hans harald harry hassan heather
hector heidi heike heinz helen helena helga hendrik henning henri henrik henry herbert
hugo ian ida ines inga inge ingrid irene iris isabel isabella isabelle ivan jack jacob
jacqueline jake james jan jana jane janet janina jannik jared jason javier jay jean jeff
jennifer jenny jens jeremy jerome jesper jessica jim joachim joan joanna jochen joe joel
johan johann johanna johannes john jon jonas jonathan jordan jorge jose josef joseph josh
joshua jost juan judith julia julian juliane julie julien julius justin jurgen kai karen
karim karin karl kasper katarina kate katharina katherine kathrin kathy katie katja
katrin keith kelly ken kevin kim klaus konrad kristina kurt lars laura lauren laurent lea
lena leo leon leonie lewis lina linda lisa liam lorenzo lotte louis louise luc luca lucas lucia
lucy ludwig luis luisa luise lukas luke lutz magnus maja malte manfred manuel manuela marc
marcel marco marcus margaret margit maria marian marie marina mario marion marius mark
markus marta martha martin martina mary mateo mathias matt matteo matthew matthias maurice
max maxim maximilian maya mehmet melanie melissa mia michael michaela michel michelle miguel
mika mike mikael milan miriam mohamed mohammed monika moritz nadia nadine nancy naomi natalia
natalie natasha nathalie nathan neil nicholas nick nicola nicolas nicole niklas nikola nikolai
nils nina noah noemi nora norbert ole olga oliver olivia omar oscar oskar pablo paola
pascal patricia patrick paul paula pauline pedro peter petra philipp philippe phillip pia
pierre pietro priya rachel rafael rahul rainer ralf ralph ramon raphael rebecca regina
reinhard rene renate richard rick rita rob robert roberto robin roger roland roman ronald
rosa ruben rudolf rupert ruth ryan sabine sabrina sacha sam samantha samir samuel sandra
sanjay sara sarah sascha sean sebastian selina sergio sergei seth shannon sharon sheila
silke silvia simon simone sofia sonja sophia sophie stefan stefanie steffen stella stephan
stephanie stephen steve steven susan susanne sven svenja sylvia tamara tanja tara teresa
thea theo theresa thiago thomas thorsten tim timo timothy tina tobias todd tom tomas tommy
tony torsten tracy ulf ulla ulrich ulrike ursula uta ute uwe valentin valentina valerie
vanessa vera veronika victor victoria vincent viktor viktoria walter wei wendy werner will
william wolfgang xavier yann yannick yasmin yusuf yvonne zoe
"""


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ROLE_WORDS = _word_set(
    """
    abuse accounting accounts admin administration alerts and ap ar billing booking bookings
    buchhaltung careers community compliance contact contacts customer customers customerservice
    daemon department dept desk do-not-reply donotreply einkauf empfang enquiries events
    feedback finance general hello help helpdesk hostmaster hr info inquiries inbox invoice
    invoices it jobs kontakt kundendienst kundenservice legal mail mailbox mailer-daemon
    marketing media news newsletter no-reply noreply notification notifications office
    onboarding operations ops orders partners partnerships payments payroll postmaster press
    privacy procurement purchasing rechnung rechnungen reception recruiting reservations sales
    security service services success support team the updates und verwaltung vertrieb
    webmaster zentrale
    """
)
_COMPANY_WORDS = _word_set(
    """
    ab ag bv co company corp corporation e.v ev gbr gmbh group holding holdings inc kg limited
    llc llp ltd nv ohg oy plc pty sa sarl sas spa srl ug
    """
)
_TITLES = _word_set(
    """
    dame dipl dott dr dra fr frau herr ing jur mag med mlle mme mr mrs ms miss mx nat phil prof
    professor rer rev sir sr sra srta
    """
)
_SUFFIXES = _word_set("ba bsc cfa cpa dds esq ii iii iv jr ma mba md msc pe phd pmp rn") | _TITLES
_SURNAME_PARTICLES = _word_set(
    "al da das de del della der di do dos du el la le st ten ter van von zu"
)
_KNOWN_FIRST_NAMES: frozenset[str]  # folded; filled in at the end of the module, after _fold

_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|<[^>]*>|\"[^\"]*\"")
_SEPARATOR = re.compile(
    r"\s+(?:[|/\u2013\u2014\u00b7\u2022-]|via|from|at|@|on\s+behalf\s+of)\s+", re.IGNORECASE
)
_QUOTES = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb`"
_EDGE_PUNCTUATION = _QUOTES + ".,;:!?*"
_NO_SPACE_SCRIPTS = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\u0e00-\u0e7f]"
)
_LOCAL_PART_SPLIT = re.compile(r"[._\-]+")
_MAX_NAME_CHARS = 24


def first_name(display_name: str | None, address: str | None) -> str | None:
    """The person's first name as a greeting would use it, or None when unsure.

    `display_name` is the decoded display name as given ("Müller, Jürgen", "" or None);
    `address` the email address. See the module docstring for what counts.
    """
    local_part = _local_part(address)
    labels = _domain_labels(address)
    found = _from_display_name(display_name, local_part, labels) if display_name else None
    if found is None and local_part:
        found = _from_local_part(local_part)
    return found


# -- display names ----------------------------------------------------------------------------


def _from_display_name(display_name: str, local_part: str, labels: frozenset[str]) -> str | None:
    name = _tidy(display_name)
    if not name or "@" in name:
        return None  # empty, or an address in the name field: the address decides
    if " " not in name and re.search(r"[._]", name):
        return _from_local_part(name.lower())  # "anna.schmidt" written as a name
    tokens = _ordered_tokens(name, labels)
    candidate = _given_name(tokens)
    if candidate is None or _fold(candidate) in labels:
        return None  # no given name, or the company's name ("Acme" from acme.example)
    if len(tokens) == 1 and not _single_word_trusted(candidate, local_part):
        return None
    return _as_name(candidate)


def _given_name(tokens: list[str]) -> str | None:
    """The given name among the name's words, given name first; None when unsure."""
    words, title_seen = _without_titles(tokens)
    if not words or any(_plain(word) in _ROLE_WORDS | _COMPANY_WORDS for word in words):
        return None
    if any(_NO_SPACE_SCRIPTS.search(word) for word in words):
        return None
    if title_seen and len(words) == 1:
        return None  # "Dr. Schmidt", "Herr Müller": a surname
    mixed = [word for word in words if not (word.isupper() and len(_letters(word)) >= 3)]
    if mixed and len(mixed) < len(words):
        words = mixed  # "Jürgen MÜLLER", "MÜLLER Jürgen": the capitals are the surname
    if _is_initial(words[0]):
        if len(words) < 3 or _is_initial(words[1]):
            return None
        words = words[1:]
    return words[0]


def _tidy(display_name: str) -> str:
    """The name without outer quotes, brackets, inner quotes and what follows a separator."""
    name = " ".join(unicodedata.normalize("NFC", display_name).split())
    name = name.strip(_QUOTES + " ")
    for quote in "\u201c\u201d\u00ab\u00bb":  # curly single quotes are apostrophes
        name = name.replace(quote, '"')
    name = _BRACKETED.sub(" ", name)
    name = _SEPARATOR.split(name, maxsplit=1)[0]
    return " ".join(name.split()).strip(_QUOTES + " ,;")


def _ordered_tokens(name: str, labels: frozenset[str]) -> list[str]:
    """The words of the name with the given name first: "Last, First" turned around,
    "First Last, Company" and trailing credentials cut. Empty when unsure."""
    parts = [part.strip() for part in name.split(",")]
    while len(parts) > 1 and all(_plain(w) in _SUFFIXES for w in _words(parts[-1])):
        parts.pop()  # "Anna Schmidt, PhD"
    parts = [part for part in parts if part]
    if len(parts) == 1:
        return _words(parts[0])
    if len(parts) > 2:
        return []
    before, after = _words(parts[0]), _words(parts[1])
    core, _ = _without_titles(before)
    surname = [word for word in core if _plain(word) not in _SURNAME_PARTICLES]
    if len(surname) != 1:
        return before  # "Jürgen Müller, ACME"
    given, _ = _without_titles(after)
    if (
        not given
        or (given[0].isupper() and not surname[0].isupper())  # "Anna, ACME"
        or _fold(given[0]) in labels
    ):
        return []
    return [*after, *core]  # "Schmidt, Dr. Anna" -> "Dr. Anna Schmidt"


def _without_titles(words: list[str]) -> tuple[list[str], bool]:
    """The words without titles and credentials, and whether a title opened the name."""
    kept = list(words)
    title_seen = False
    while kept and _is_title(kept[0]):
        kept.pop(0)
        title_seen = True
    while len(kept) > 1 and _plain(kept[-1]) in _SUFFIXES:
        kept.pop()
    return kept, title_seen


def _is_title(word: str) -> bool:
    plain = _plain(word)
    if plain in _TITLES:
        return True
    # "Dipl.-Ing.", "Dr.med.": dotted abbreviations longer than an initial
    return "." in word.strip(".") and len(_letters(word)) > 2


def _single_word_trusted(word: str, local_part: str) -> bool:
    """Whether a display name of one word is a first name: a known one, or the address's."""
    folded = _fold(word)
    if all(part in _KNOWN_FIRST_NAMES for part in folded.split("-")):
        return True  # "Anna", "Jean-Luc"
    pieces = [piece for piece in _LOCAL_PART_SPLIT.split(local_part) if piece]
    return bool(pieces) and _fold(pieces[0]) == folded and len(pieces) > 1


# -- addresses --------------------------------------------------------------------------------


def _from_local_part(local_part: str) -> str | None:
    local = unicodedata.normalize("NFC", local_part).lower().split("+", 1)[0]
    if local in _ROLE_WORDS:
        return None
    pieces = [piece.rstrip("0123456789") for piece in _LOCAL_PART_SPLIT.split(local)]
    pieces = [piece for piece in pieces if piece]
    if not pieces or any(piece in _ROLE_WORDS for piece in pieces):
        return None
    first = pieces[0]
    known = _fold(first) in _KNOWN_FIRST_NAMES
    if len(pieces) == 1:
        return _as_name(first) if known else None  # "anna" yes, "jsmith" no
    if not known:
        if len(_letters(first)) < 3 or _fold(pieces[1]) in _KNOWN_FIRST_NAMES:
            return None  # an initial or a short code; or perhaps "lastname.firstname"
        if not re.search(r"[aeiouyäöüéèáàíóúåø]", first):
            return None  # "mk", "jpr": initials run together
    return _as_name(first)


def _local_part(address: str | None) -> str:
    if not address or "@" not in address:
        return ""
    return address.strip().rpartition("@")[0].strip().lower()


def _domain_labels(address: str | None) -> frozenset[str]:
    """The labels of the address's domain but the last ("acme" of "mail.acme.example")."""
    if not address or "@" not in address:
        return frozenset()
    labels = address.strip().rpartition("@")[2].lower().split(".")
    return frozenset(_fold(label) for label in labels[:-1] if label)


# -- words ------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    words = (word.strip(_EDGE_PUNCTUATION.replace(".", "")) for word in text.split())
    return [word for word in words if any(char.isalpha() for char in word)]


def _plain(word: str) -> str:
    return word.strip(_EDGE_PUNCTUATION).lower()


def _letters(word: str) -> str:
    return "".join(char for char in word if char.isalpha())


def _is_initial(word: str) -> bool:
    """ "J.", "J", "JP", "J.R.": initials, not a name."""
    letters = _letters(word)
    return len(letters) <= 1 or (len(letters) <= 2 and word.isupper()) or word.count(".") > 1


def _as_name(word: str) -> str | None:
    """The word as a greeting writes it ("JÜRGEN" -> "Jürgen"), or None when it is no name."""
    word = word.strip(_EDGE_PUNCTUATION)
    parts = word.split("-")
    if len(word) > _MAX_NAME_CHARS or not all(
        len(part) >= 2 and all(char.isalpha() or char in "'\u2019" for char in part)
        for part in parts
    ):
        return None
    if _plain(word) in _ROLE_WORDS | _COMPANY_WORDS | _TITLES:
        return None
    if word.isupper() or word.islower():
        return "-".join(part[:1].upper() + part[1:].lower() for part in parts)
    return word


def _fold(word: str) -> str:
    """Lower case without accents, German transliterations folded: "Jürgen" == "juergen"."""
    decomposed = unicodedata.normalize("NFKD", word.lower().replace("ß", "ss"))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return plain.replace("ae", "a").replace("oe", "o").replace("ue", "u")


_KNOWN_FIRST_NAMES = frozenset(_fold(name) for name in _KNOWN_FIRST_NAMES_TEXT.split())
