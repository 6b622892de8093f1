"""Unit tests for `rules.drafts`: follow-up drafts composed from a status and the templates."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from rules.commitment import Commitment
from rules.drafts import (
    SHIPPED_TEMPLATES_DIR,
    TEMPLATE_VARIABLES,
    Draft,
    Playbooks,
    TemplateError,
    compose,
    draft_key,
    shipped_playbooks,
    template_file_name,
)
from rules.status import ProspectStatus, ReplyTarget, Status

NOW = datetime(2026, 11, 12, 9, 30, tzinfo=UTC)  # a Thursday
REP = {"rep_name": "Dana Reyes", "rep_address": "dana@acmesoft.example"}
SIGNATURE = "Dana Reyes\nAcmeSoft"
STAGES = {1: "release_pressure", 2: "accountability", 3: "apology", 4: "closure"}
NEXT_STEP = Commitment(
    sentence="We'll run it past our IT team and let you know next week.",
    quoted="you'd run it past your IT team and let me know next week",
    kind="next_step",
)
TIMELINE = Commitment(
    sentence="We need to decide by end of Q1.",
    quoted="you needed to decide by end of Q1",
    kind="timeline",
)
CLICHES = (
    "just checking in",
    "checking in",
    "circling back",
    "circle back",
    "touch base",
    "touching base",
    "hope this finds you well",
    "hope this email finds you",
    "hope you're well",
    "hope you are well",
    "just following up",
    "following up",
    "just wanted to",
    "bumping this",
    "bump this",
    "top of your inbox",
    "per my last email",
    "as per my last",
    "friendly reminder",
    "gentle reminder",
    "quick question",
    "reaching out",
    "any update",
    "did you get a chance",
    "at your earliest convenience",
    "don't hesitate",
    "pick your brain",
    "synergy",
    "low-hanging fruit",
    "win-win",
    "is this still a priority",
)
LONG_ID = "CAHk-=wiA0Very1Long2Message3Identifier4From5Gmail6abcdefghijklmnop@mail.gmail.com"


@pytest.fixture(scope="module")
def playbooks() -> Playbooks:
    return Playbooks(
        {
            name: (SHIPPED_TEMPLATES_DIR / template_file_name(name)).read_text(encoding="utf-8")
            for name in shipped_playbooks()
        }
    )


def prospect_status(**changes: object) -> ProspectStatus:
    """A prospect who answered on Tue 3 Nov and has been silent since."""
    status = ProspectStatus(
        account="dana",
        prospect="juergen.mueller@acme.example",
        name="Müller, Jürgen",
        company="acme.example",
        status=Status.GHOSTED,
        last_outbound_at=NOW - timedelta(days=6),
        last_inbound_at=NOW - timedelta(days=9),
        followups_sent=1,
        next_stage=2,
        next_action_at=NOW - timedelta(hours=1),
        subject="Pricing",
        reason="no reply",
        playbook="accountability",
        reply_to=ReplyTarget("last@acme.example", ("first@acmesoft.example",), None, "AW: Pricing"),
        last_reply_at=NOW - timedelta(days=9),
        commitment=NEXT_STEP,
    )
    return dataclasses.replace(status, **changes)  # type: ignore[arg-type]


def draft_for(status: ProspectStatus, playbooks: Playbooks, **options: object) -> Draft:
    arguments: dict[str, object] = {
        **REP,
        "signature": SIGNATURE,
        "playbooks": playbooks,
        "now": NOW,
        "timezone": "Europe/Berlin",
        **options,
    }
    return compose(status, **arguments)  # type: ignore[arg-type]


def parsed(draft: Draft) -> EmailMessage:
    message = message_from_bytes(draft.as_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def words(text: str) -> int:
    return len(text.split())


# -- every template, every variant ------------------------------------------------------------

COMMITMENTS = (("next-step", NEXT_STEP), ("timeline", TIMELINE), ("no-commitment", None))
VARIANTS = [
    pytest.param(stage, name, commitment, id=f"stage{stage}-{label}-{commitment_label}")
    for stage in (*STAGES, "cold")
    for label, name in (("named", "Müller, Jürgen"), ("unnamed", ""))
    # a cold prospect never wrote, so never promised anything
    for commitment_label, commitment in (COMMITMENTS if stage != "cold" else COMMITMENTS[-1:])
]


def variant_status(stage: int | str, name: str, commitment: Commitment | None) -> ProspectStatus:
    if stage == "cold":
        return prospect_status(
            status=Status.COLD,
            playbook="release_pressure",
            next_stage=1,
            followups_sent=0,
            last_inbound_at=None,
            last_reply_at=None,
            commitment=None,
            name=name,
            prospect="jmueller@acme.example",
        )
    assert isinstance(stage, int)
    return prospect_status(
        next_stage=stage,
        followups_sent=stage - 1,
        playbook=STAGES[stage],
        name=name,
        prospect="jmueller@acme.example",
        commitment=commitment,
    )


@pytest.mark.parametrize(("stage", "name", "commitment"), VARIANTS)
def test_every_template_reads_well(
    playbooks: Playbooks, stage: int | str, name: str, commitment: Commitment | None
) -> None:
    """Each playbook greets by name or with "Hi,", stays short, and ends with the signature."""
    body = draft_for(variant_status(stage, name, commitment), playbooks).body
    greeting = "Hi Jürgen," if name else "Hi,"
    assert body.splitlines()[0] == greeting
    assert body.endswith(f"\n\n{SIGNATURE}\n") or body.endswith(f",\n{SIGNATURE}\n")
    assert not re.search(r"\{[{%#]|[}%#]\}|\bNone\b|  | [,.?]|\n\n\n|^\s|[ \t]\n", body)
    quoted_words = words(commitment.quoted) if commitment and commitment.quoted in body else 0
    assert words(body) - words(SIGNATURE) - quoted_words <= 90
    lowered = " ".join(body.lower().replace("\u2019", "'").split())
    assert [cliche for cliche in CLICHES if cliche in lowered] == []


@pytest.mark.parametrize("stage", [*STAGES, "cold"])
def test_no_quote_is_left_dangling_without_commitment(
    playbooks: Playbooks, stage: int | str
) -> None:
    """Without a commitment no "you said"/"you mentioned" is left dangling in any template."""
    body = draft_for(variant_status(stage, "", None), playbooks).body
    assert "you said" not in body
    assert "You mentioned" not in body


def test_accountability_quotes_their_words_with_the_date(playbooks: Playbooks) -> None:
    """Stage 2 holds the prospect to their own turned-around words, dated in the timezone."""
    body = draft_for(prospect_status(), playbooks).body
    assert "When you wrote on Tue 3 Nov, you said " + NEXT_STEP.quoted + "." in body
    assert "Has something changed?" in body


def test_accountability_without_commitment_still_asks(playbooks: Playbooks) -> None:
    """Without a commitment stage 2 still asks whether something changed, without a quote."""
    body = draft_for(prospect_status(commitment=None), playbooks).body
    assert "Has something changed?" in body
    assert "When you wrote on Tue 3 Nov," in body


def test_release_pressure_uses_a_next_step_only(playbooks: Playbooks) -> None:
    """Stage 1 mentions a promised next step, but not a deadline (that would be pressure)."""
    stage1 = {"next_stage": 1, "followups_sent": 0, "playbook": "release_pressure"}
    with_step = draft_for(prospect_status(**stage1), playbooks).body
    with_deadline = draft_for(prospect_status(**stage1, commitment=TIMELINE), playbooks).body
    assert f"You mentioned {NEXT_STEP.quoted}." in with_step
    assert TIMELINE.quoted not in with_deadline
    assert "no need" in with_step.lower() or "don't feel you need" in with_step


def test_closure_asks_for_closure_and_names_their_timeline(playbooks: Playbooks) -> None:
    """Stage 4 asks whether to close the file, quoting the timeline they gave when known."""
    status = prospect_status(next_stage=4, followups_sent=3, playbook="closure")
    body = draft_for(dataclasses.replace(status, commitment=TIMELINE), playbooks).body
    assert "close the file" in body
    assert "timing just off?" in body
    assert f"You mentioned {TIMELINE.quoted}," in body


def test_cold_prospect_gets_cold_bump(playbooks: Playbooks) -> None:
    """A prospect who never answered gets `cold_bump`, whatever the stage's playbook says."""
    draft = draft_for(variant_status("cold", "Müller, Jürgen", None), playbooks)
    assert draft.playbook == "cold_bump"
    assert 'I wrote to you 6 days ago about "Pricing"' in draft.body


def test_signature_falls_back_to_rep_name(playbooks: Playbooks) -> None:
    """With no `drafts.signature` configured the draft is signed with the rep's name."""
    body = draft_for(prospect_status(), playbooks, signature="").body
    assert body.endswith("\nDana Reyes\n")


def test_body_is_plain_text_not_html_escaped(playbooks: Playbooks) -> None:
    """Templates render plain text: "&" and "<" in a subject stay as written."""
    status = variant_status("cold", "", None)
    body = draft_for(dataclasses.replace(status, subject="Q&A <pricing>"), playbooks).body
    assert '"Q&A <pricing>"' in body


# -- variables ----------------------------------------------------------------------------------


def probe(status: ProspectStatus, template: str, **options: object) -> str:
    playbooks = Playbooks({"probe": template})
    return draft_for(dataclasses.replace(status, playbook="probe"), playbooks, **options).body


def test_every_documented_variable_is_provided() -> None:
    """A template using every variable of `TEMPLATE_VARIABLES` renders (no undefined one)."""
    template = "".join(f"{name}={{{{ {name} }}}}\n" for name in TEMPLATE_VARIABLES)
    body = probe(prospect_status(), template)
    assert "first_name=Jürgen\n" in body
    assert "full_name=Müller, Jürgen\n" in body
    assert "rep_name=Dana Reyes\n" in body
    assert "subject=Pricing\n" in body
    assert "company=acme.example\n" in body
    assert "stage=2\n" in body


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [("Europe/Berlin", "2|Wed 4 Nov"), ("UTC", "3|Tue 3 Nov"), ("America/New_York", "3|Tue 3 Nov")],
)
def test_days_and_reply_date_count_in_the_timezone(timezone: str, expected: str) -> None:
    """Days since the last contact and the reply's date are read in `daemon.timezone`."""
    status = prospect_status(
        last_outbound_at=datetime(2026, 11, 9, 23, 30, tzinfo=UTC),  # Tue 00:30 in Berlin
        last_inbound_at=datetime(2026, 11, 3, 23, 30, tzinfo=UTC),
        last_reply_at=datetime(2026, 11, 3, 23, 30, tzinfo=UTC),
    )
    body = probe(status, "{{ days_since_contact }}|{{ last_reply_date }}", timezone=timezone)
    assert body == f"{expected}\n"


def test_days_count_from_the_later_of_outbound_and_inbound() -> None:
    """A reply after the rep's last message is the last contact (a colleague's, say)."""
    status = prospect_status(
        last_outbound_at=NOW - timedelta(days=8), last_inbound_at=NOW - timedelta(days=2)
    )
    assert probe(status, "{{ days_since_contact }}") == "2\n"


def test_absent_values_are_none() -> None:
    """No commitment, no reply date and no first name are None, so `{% if %}` tests them."""
    status = prospect_status(
        commitment=None, last_reply_at=None, name="", prospect="info@acme.example"
    )
    template = "{{ commitment is none }} {{ last_reply_date is none }} {{ first_name is none }}"
    assert probe(status, template) == "True True True\n"


# -- headers ------------------------------------------------------------------------------------


def test_headers_parse_back(playbooks: Playbooks) -> None:
    """The draft is a proper reply: one Re:, threading headers, key, encoded names, UTF-8."""
    draft = draft_for(prospect_status(), playbooks)
    raw = draft.as_bytes()
    message = parsed(draft)
    assert message["Subject"] == "Re: Pricing"
    assert message["In-Reply-To"] == "<last@acme.example>"
    assert message["References"] == "<first@acmesoft.example> <last@acme.example>"
    assert message["X-Relight-Key"] == draft.key
    assert message["Message-ID"] == f"<relight.{draft.key}@acmesoft.example>"
    assert message["MIME-Version"] == "1.0"
    assert message["From"].addresses[0].display_name == "Dana Reyes"
    assert message["From"].addresses[0].addr_spec == "dana@acmesoft.example"
    assert message["To"].addresses[0].display_name == "Müller, Jürgen"
    assert message["To"].addresses[0].addr_spec == "juergen.mueller@acme.example"
    assert message["Date"].datetime == NOW
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n") == draft.body
    assert raw.isascii()
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"To: =?utf-8?" in raw
    assert sum(1 for line in raw.split(b"\r\n") if line.startswith(b"Subject:")) == 1


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Pricing", "Re: Pricing"),
        ("RE: AW: [External] Re: Pricing", "Re: Pricing"),
        ("Re: Prüfung der Angebote", "Re: Prüfung der Angebote"),
        ("Re:", "Re: Our conversation"),
        ("", "Re: Our conversation"),
    ],
)
def test_subject_has_exactly_one_re(playbooks: Playbooks, subject: str, expected: str) -> None:
    """The subject is "Re: " and the base subject; a subjectless thread gets a plain one."""
    status = prospect_status(
        subject="",
        reply_to=ReplyTarget("last@acme.example", (), None, subject),
    )
    assert parsed(draft_for(status, playbooks))["Subject"] == expected


def test_cold_subjectless_thread_gets_its_own_subject(playbooks: Playbooks) -> None:
    """A cold prospect never had a conversation: its fallback subject does not claim one."""
    status = dataclasses.replace(
        variant_status("cold", "", None),
        subject="",
        reply_to=ReplyTarget("x@acmesoft.example", (), None, ""),
    )
    assert draft_for(status, playbooks).subject == "Re: My last message"


def test_long_references_are_trimmed(playbooks: Playbooks) -> None:
    """Long References keep the first id and the last ten, the replied-to id last."""
    references = tuple(f"m{number}@acme.example" for number in range(30))
    status = prospect_status(reply_to=ReplyTarget("last@acme.example", references, None, "x"))
    draft = draft_for(status, playbooks)
    assert draft.references == ("m0@acme.example", *references[-9:], "last@acme.example")
    assert parsed(draft)["References"].split() == [f"<{item}>" for item in draft.references]


def test_short_references_are_kept_whole(playbooks: Playbooks) -> None:
    """Up to eleven ids are kept as they are."""
    references = tuple(f"m{number}@acme.example" for number in range(10))
    status = prospect_status(reply_to=ReplyTarget("last@acme.example", references, None, "x"))
    assert draft_for(status, playbooks).references == (*references, "last@acme.example")


def test_long_message_ids_fold_without_encoding(playbooks: Playbooks) -> None:
    """Ids too long for one line are folded between ids, never turned into encoded words."""
    references = tuple(f"{number}.{LONG_ID}" for number in range(5))
    status = prospect_status(reply_to=ReplyTarget(LONG_ID, references, None, "Pricing"))
    draft = draft_for(status, playbooks)
    raw = draft.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in head.split(b"\r\nX-Relight-Key")[0].split(b"\r\nIn-Reply-To")[1]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    message = parsed(draft)
    assert message["In-Reply-To"] == f"<{LONG_ID}>"
    assert message["References"].split() == [f"<{item}>" for item in (*references, LONG_ID)]


def test_unusable_ids_are_left_out(playbooks: Playbooks) -> None:
    """An id no header can carry (8-bit, spaces) is dropped rather than breaking the draft."""
    references = ("good@acme.example", "bäd@acme.example", "sp ace@acme.example")
    status = prospect_status(reply_to=ReplyTarget("ünicode@acme.example", references, None, "x"))
    draft = draft_for(status, playbooks)
    assert draft.in_reply_to is None
    assert draft.references == ("good@acme.example",)
    assert parsed(draft)["References"] == "<good@acme.example>"


def test_no_reply_target_means_no_threading_headers(playbooks: Playbooks) -> None:
    """Without a message to answer the draft carries no In-Reply-To or References."""
    message = parsed(draft_for(prospect_status(reply_to=None), playbooks))
    assert message["In-Reply-To"] is None
    assert message["References"] is None
    assert message["Subject"] == "Re: Pricing"


# -- identity -----------------------------------------------------------------------------------


def test_draft_key_is_stable() -> None:
    """The key is the first 32 hex digits of sha256("account\\nprospect\\nstage"), forever:
    a changed key would write a second draft after an upgrade."""
    assert draft_key("dana", "anna@acme.example", 2) == "21415b9c4230917fe4c1af9e610ddf57"


def test_draft_key_matches_its_definition() -> None:
    """The key is sha256 over the three fields joined by newlines, cut to 32 digits."""
    expected = hashlib.sha256(b"dana\nanna@acme.example\n2").hexdigest()[:32]
    assert draft_key("dana", "anna@acme.example", 2) == expected


def test_key_and_message_id_are_deterministic(playbooks: Playbooks) -> None:
    """The same (account, prospect, stage) gives the same key and Message-ID at any time;
    another stage, prospect or account gives another."""
    first = draft_for(prospect_status(), playbooks)
    again = draft_for(prospect_status(), playbooks, now=NOW + timedelta(days=3))
    assert (again.key, again.message_id) == (first.key, first.message_id)
    assert first.key == draft_key("dana", "juergen.mueller@acme.example", 2)
    assert first.message_id == f"relight.{first.key}@acmesoft.example"
    others = [
        draft_for(prospect_status(next_stage=3, playbook="apology"), playbooks),
        draft_for(prospect_status(prospect="anna@acme.example"), playbooks),
        draft_for(prospect_status(account="lee"), playbooks),
    ]
    assert len({first.key, *(other.key for other in others)}) == 4


def test_message_id_domain_is_ascii(playbooks: Playbooks) -> None:
    """A rep on an internationalised domain gets a Message-ID in its A-label form."""
    draft = draft_for(prospect_status(), playbooks, rep_address="dana@bücher.example")
    assert draft.message_id == f"relight.{draft.key}@xn--bcher-kva.example"


def test_compose_refuses_a_status_without_a_stage(playbooks: Playbooks) -> None:
    """Only a status with a next stage and playbook can become a draft."""
    status = prospect_status(
        status=Status.EXHAUSTED, next_stage=None, next_action_at=None, playbook=None
    )
    with pytest.raises(ValueError, match="no draft is due"):
        draft_for(status, playbooks)


# -- template errors ----------------------------------------------------------------------------


def test_syntax_error_names_the_playbook_and_line(playbooks: Playbooks) -> None:
    """A template that does not compile raises TemplateError naming its playbook and line."""
    sources = {**playbooks.sources, "apology": "Hi,\n\n{% if first_name %}\nno end\n"}
    with pytest.raises(TemplateError, match=r"'apology', line \d") as caught:
        Playbooks(sources)
    assert caught.value.playbook == "apology"


def test_misspelt_variable_fails_when_built() -> None:
    """A variable that does not exist is caught when the templates are built, with its line."""
    with pytest.raises(TemplateError, match="frist_name") as caught:
        Playbooks({"closure": "Hi,\n\nHello {{ frist_name }}\n"})
    assert (caught.value.playbook, caught.value.line) == ("closure", 3)


def test_runtime_error_in_a_template_is_a_template_error() -> None:
    """Whatever an admin's template raises while rendering becomes a TemplateError."""
    with pytest.raises(TemplateError, match="'custom', line 2"):
        Playbooks({"custom": "Hi,\n{{ days_since_contact / 0 }}\n"})


def test_sandbox_refuses_internals() -> None:
    """Templates run sandboxed: Python internals are out of reach."""
    with pytest.raises(TemplateError, match="'custom'"):
        Playbooks({"custom": "{{ commitment.__class__.__mro__[1].__subclasses__() }}\n"})


def test_missing_playbook_is_a_template_error(playbooks: Playbooks) -> None:
    """A stage naming a playbook without a template fails naming it; `missing` lists it."""
    assert playbooks.missing(["apology", "custom", "custom"]) == ("custom",)
    with pytest.raises(TemplateError, match="'custom'"):
        draft_for(prospect_status(playbook="custom"), playbooks)


def test_draft_refuses_bracketed_message_ids(playbooks: Playbooks) -> None:
    """Draft holds bare message-ids, as `rules.message` does; brackets are a caller's bug."""
    draft = draft_for(prospect_status(), playbooks)
    with pytest.raises(ValueError, match="bad message-id"):
        dataclasses.replace(draft, in_reply_to="<last@acme.example>")


def test_shipped_templates_are_the_listed_ones() -> None:
    """The templates directory holds exactly one file per shipped playbook."""
    files = {path.name for path in SHIPPED_TEMPLATES_DIR.iterdir()}
    assert files == {template_file_name(name) for name in shipped_playbooks()}
