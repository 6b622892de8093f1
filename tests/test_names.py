"""Unit tests for `rules.names`: the first name a draft's greeting uses, or None when unsure."""

from __future__ import annotations

import pytest

from rules.names import first_name

# (display name as decoded, address, expected first name or None)
CASES = [
    # display names
    ("Jürgen Müller", "jm@acme.example", "Jürgen"),
    ("Müller, Jürgen", "jm@acme.example", "Jürgen"),
    ("MÜLLER, JÜRGEN", "jm@acme.example", "Jürgen"),
    ("Dr. Anna Schmidt", "as@acme.example", "Anna"),
    ("Prof. Dr.-Ing. Anna Schmidt", "as@acme.example", "Anna"),
    ("Schmidt, Dr. Anna", "as@acme.example", "Anna"),
    ("ANNA SCHMIDT", "as@acme.example", "Anna"),
    ("anna schmidt", "as@acme.example", "Anna"),
    ('"Anna Schmidt"', "as@acme.example", "Anna"),
    ("'Anna Schmidt'", "as@acme.example", "Anna"),
    ("\u201cAnna Schmidt\u201d", "as@acme.example", "Anna"),
    ("Schmidt, Anna (ACME)", "as@acme.example", "Anna"),
    ("Anna Schmidt [ACME]", "as@acme.example", "Anna"),
    ("Anna Schmidt | ACME GmbH", "as@acme.example", "Anna"),
    ("Anna Schmidt - ACME", "as@acme.example", "Anna"),
    ("Anna Schmidt via LinkedIn", "as@acme.example", "Anna"),
    ("Anna Schmidt, PhD", "as@acme.example", "Anna"),
    ("Jürgen Müller, ACME", "jm@acme.example", "Jürgen"),
    ("van der Berg, Anna", "ab@acme.example", "Anna"),
    ("Jürgen MÜLLER", "jm@acme.example", "Jürgen"),
    ("MÜLLER Jürgen", "jm@acme.example", "Jürgen"),
    ('Robert "Bob" Smith', "rs@acme.example", "Robert"),
    ("J. Robert Smith", "rs@acme.example", "Robert"),
    ("Jean-Luc Picard", "jlp@acme.example", "Jean-Luc"),
    ("Jean-Luc", "jlp@acme.example", "Jean-Luc"),
    ("Anna", "as@acme.example", "Anna"),
    ("D\u2019Angelo Russo", "dr@acme.example", "D\u2019Angelo"),
    ("\u00abAnna Schmidt\u00bb", "as@acme.example", "Anna"),
    ("Иван Петров", "ip@acme.example", "Иван"),
    ("Siddharth", "siddharth.rao@acme.example", "Siddharth"),
    # display names that name no one, or not surely
    ("A. Schmidt", "as@acme.example", None),
    ("Schmidt, A.", "as@acme.example", None),
    ("JP Morgan", "jpm@acme.example", None),
    ("Dr. Schmidt", "schmidt@acme.example", None),
    ("Frau Müller", "mueller@acme.example", None),
    ("Anna, ACME", "as@acme.example", None),
    ("Acme", "contact@acme.example", None),
    ("Siddharth", "sr@acme.example", None),
    ("Schmidt", "as@acme.example", None),
    ("info", "info@acme.example", None),
    ("Sales", "sales@acme.example", None),
    ("ACME Sales Team", "sales@acme.example", None),
    ("ACME GmbH", "hello@acme.example", None),
    ("Customer Service", "service@acme.example", None),
    ("The ACME Team", "team@acme.example", None),
    ("Anna and Tom Schmidt", "family@acme.example", None),
    ("王伟", "wang@acme.example", None),
    ("山田太郎", "yamada@acme.example", None),
    ("Schmidt, Anna, ACME", "as@acme.example", None),
    ("R2D2", "r2@acme.example", None),
    # names that are really addresses: the address decides
    ("anna.schmidt@acme.example", "anna.schmidt@acme.example", "Anna"),
    ("'info@acme.example'", "info@acme.example", None),
    ("anna.schmidt", "anna.schmidt@acme.example", "Anna"),
    # a display name that gives nothing falls back to the address
    ("Dr. Schmidt", "hans.schmidt@acme.example", "Hans"),
    ("A. Schmidt", "anna.schmidt@acme.example", "Anna"),
    # addresses alone
    (None, "jürgen.mueller@acme.example", "Jürgen"),
    ("", "juergen.mueller@acme.example", "Juergen"),
    ("", "anna@acme.example", "Anna"),
    ("", "anna.schmidt+crm@acme.example", "Anna"),
    ("", "anna_schmidt@acme.example", "Anna"),
    ("", "Anna.Schmidt@ACME.example", "Anna"),
    ("", "siddharth.rao@acme.example", "Siddharth"),
    ("", "j.mueller@acme.example", None),
    ("", "jsmith@acme.example", None),
    ("", "annaschmidt@acme.example", None),
    ("", "mk.smith@acme.example", None),
    ("", "mueller.juergen@acme.example", None),
    ("", "info@acme.example", None),
    ("", "sales.team@acme.example", None),
    ("", "office.berlin@acme.example", None),
    ("", "no-reply@acme.example", None),
    ("", "", None),
    (None, None, None),
]


@pytest.mark.parametrize(
    ("display_name", "address", "expected"),
    CASES,
    ids=[f"{name!r} <{address}>" for name, address, _ in CASES],
)
def test_first_name(display_name: str | None, address: str | None, expected: str | None) -> None:
    """The given name a greeting would use, or None where a guess could be wrong."""
    assert first_name(display_name, address) == expected
