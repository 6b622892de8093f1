"""Who belongs to which company, who is a colleague, and who must never be contacted.

SPEC section 2: a prospect's company is their email domain, except on freemail domains
(gmail.com, outlook.com, yahoo.*, gmx.*, ...), where every address is its own company: two
strangers on gmail.com are not colleagues, so one's reply never counts for the other
(`rules.group_by = "company"`). An address is internal when its domain is one of the
account's own domains or `rules.internal_domains`, subdomains included
("eu.acmesoft.example" is AcmeSoft too). The do-not-contact list holds addresses and
"@domain" entries; a domain entry covers its subdomains as well, because erring towards
"do not write" is the safe side.

Everything here compares lower-case; the functions are cheap and pure, and the few that
run once per message are cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "FREEMAIL_DOMAINS",
    "FREEMAIL_FAMILIES",
    "DoNotContact",
    "company_of",
    "domain_of",
    "is_automated_address",
    "is_freemail",
    "is_internal",
]

FREEMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "msn.com",
        "passport.com",
        "ymail.com",
        "rocketmail.com",
        "aol.com",
        "aim.com",
        "web.de",
        "t-online.de",
        "freenet.de",
        "arcor.de",
        "posteo.de",
        "mailbox.org",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tutanota.de",
        "tuta.io",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "rambler.ru",
        "ya.ru",
        "zoho.com",
        "zohomail.com",
        "fastmail.com",
        "fastmail.fm",
        "hey.com",
        "mail.com",
        "email.com",
        "usa.com",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "naver.com",
        "daum.net",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "libero.it",
        "virgilio.it",
        "tiscali.it",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "onet.pl",
        "interia.pl",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "bellsouth.net",
        "cox.net",
        "earthlink.net",
        "btinternet.com",
        "sky.com",
        "bluewin.ch",
        "telenet.be",
        "skynet.be",
        "ziggo.nl",
        "kpnmail.nl",
        "home.nl",
        "bigpond.com",
        "shaw.ca",
        "rogers.com",
        "sympatico.ca",
        "rediffmail.com",
        "yopmail.com",
    }
)
"""Freemail domains matched exactly (lower-case)."""

FREEMAIL_FAMILIES: frozenset[str] = frozenset(
    {"hotmail", "live", "outlook", "windowslive", "yahoo", "gmx", "yandex", "gmail"}
)
"""Providers with one domain per country (hotmail.co.uk, yahoo.de, gmx.net, yandex.ru):
the first label of the domain, matched when the rest is a short country or generic suffix."""

# The suffix after a family name: "com", "de", "co.uk", "com.br", "at" ... (one or two
# labels, each short), so "live.com" is freemail and "live.events.example" is not.
_MAX_SUFFIX_LABELS = 2
_MAX_SUFFIX_LABEL = 4


def domain_of(address: str) -> str:
    """What stands after the last "@", lower-case; "" when there is none."""
    local, at, domain = address.rpartition("@")
    return domain.strip().lower() if at and local else ""


@lru_cache(maxsize=4096)
def _is_builtin_freemail(domain: str) -> bool:
    if domain in FREEMAIL_DOMAINS:
        return True
    family, _, suffix = domain.partition(".")
    if family not in FREEMAIL_FAMILIES or not suffix:
        return False
    labels = suffix.split(".")
    return len(labels) <= _MAX_SUFFIX_LABELS and all(
        0 < len(label) <= _MAX_SUFFIX_LABEL and label.isalpha() for label in labels
    )


def is_freemail(domain: str, extra_freemail: Iterable[str] = ()) -> bool:
    """Whether `domain` is a freemail provider: built in, or one of `extra_freemail`
    (`rules.freemail_domains`)."""
    domain = domain.strip().lower()
    if _is_builtin_freemail(domain):
        return True
    return any(domain == extra.strip().lower() for extra in extra_freemail)


def company_of(address: str, extra_freemail: Iterable[str] = ()) -> str:
    """The company an address belongs to: its domain, or the address itself on freemail.

    An address without a domain is its own company too.
    """
    address = address.strip().lower()
    domain = domain_of(address)
    if not domain or is_freemail(domain, extra_freemail):
        return address
    return domain


# SPEC section 4: mail from these local parts is written by machines, so such an address
# is never a prospect even when the rep answered one (a ticket system, a bounce).
_AUTOMATED_LOCAL = re.compile(
    r"(?:mailer[-_.]?daemon|post[-_.]?master|bounces?|no[-_.]?reply|do[-_.]?not[-_.]?reply)"
    r"(?:[-+._=].*)?",
    re.IGNORECASE,
)


def is_automated_address(address: str) -> bool:
    """Whether the local part says a machine writes from `address` (mailer-daemon,
    postmaster, no-reply, do-not-reply, bounce(s), with any +tag or suffix)."""
    local = address.rpartition("@")[0] or address
    return _AUTOMATED_LOCAL.fullmatch(local) is not None


def _within(domain: str, parent: str) -> bool:
    """Whether `domain` is `parent` or one of its subdomains."""
    return domain == parent or domain.endswith("." + parent)


def is_internal(
    address: str, own_domains: Iterable[str], internal_domains: Iterable[str] = ()
) -> bool:
    """Whether `address` belongs to the team: one of `own_domains` (the accounts' own
    domains) or `internal_domains` (`rules.internal_domains`), subdomains included."""
    domain = domain_of(address.lower())
    if not domain:
        return False
    parents = (entry.strip().lower().lstrip("@") for entry in (*own_domains, *internal_domains))
    return any(parent and _within(domain, parent) for parent in parents)


@dataclass(frozen=True, slots=True, init=False)
class DoNotContact:
    """The do-not-contact list (`rules.do_not_contact`): addresses and "@domain" entries.

    A domain entry covers its subdomains ("@competitor.example" matches
    "kim@eu.competitor.example"). Entries are compared lower-case; an entry that is
    neither an address nor "@domain" raises `ValueError`.
    """

    addresses: frozenset[str]
    domains: frozenset[str]

    def __init__(self, entries: Iterable[str] = ()) -> None:
        addresses: set[str] = set()
        domains: set[str] = set()
        for raw in entries:
            entry = raw.strip().lower()
            if entry.startswith("@") and len(entry) > 1 and "@" not in entry[1:]:
                domains.add(entry[1:])
            elif domain_of(entry):
                addresses.add(entry)
            else:
                raise ValueError(f"do-not-contact entry is neither an address nor @domain: {raw!r}")
        object.__setattr__(self, "addresses", frozenset(addresses))
        object.__setattr__(self, "domains", frozenset(domains))

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains)

    def match(self, address: str) -> str | None:
        """The entry that covers `address` ("someone@example.com" or "@example.com"), or None."""
        address = address.strip().lower()
        if address in self.addresses:
            return address
        domain = domain_of(address)
        while domain:
            if domain in self.domains:
                return "@" + domain
            domain = domain.partition(".")[2]
        return None
