"""The configuration file: every refusal names its key, and the defaults are the documented ones."""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from daemon.config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_STAGES,
    AccountConfig,
    Config,
    ConfigError,
    DaemonSettings,
    DraftSettings,
    Holidays,
    PrivacySettings,
    RulesSettings,
    Snooze,
    Stage,
    load_config,
    parse_config,
    resolve_config_path,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
ENV = {"PW": "hunter2", "GRAPH_SECRET": "s3cret-graph", "EMPTY": ""}

IMAP = {
    "name": '"dana"',
    "kind": '"imap"',
    "rep_name": '"Dana Reyes"',
    "addresses": '["dana@acmesoft.example"]',
    "host": '"imap.acmesoft.example"',
    "password_env": '"PW"',
}
GRAPH = {
    "name": '"lee"',
    "kind": '"graph"',
    "rep_name": '"Lee Park"',
    "addresses": '["lee@acmesoft.example"]',
    "tenant_id": '"tenant"',
    "client_id": '"client"',
    "client_secret_env": '"GRAPH_SECRET"',
}
EWS = {
    "name": '"kim"',
    "kind": '"ews"',
    "rep_name": '"Kim Ode"',
    "addresses": '["kim@acmesoft.example"]',
    "ews_url": '"https://mail.acmesoft.example/EWS/Exchange.asmx"',
    "password_env": '"PW"',
}
MAILDIR = {
    "name": '"me"',
    "kind": '"maildir"',
    "rep_name": '"Dana Reyes"',
    "addresses": '["dana@acmesoft.example"]',
    "path": '"/home/dana/Mail/work"',
}


def account(base: dict[str, str], **changes: str | None) -> str:
    """An [[accounts]] table: `base` with keys replaced, added, or dropped (None)."""
    keys = {**base, **changes}
    lines = [f"{key} = {value}" for key, value in keys.items() if value is not None]
    return "\n[[accounts]]\n" + "\n".join(lines) + "\n"


def imap(**changes: str | None) -> str:
    return account(IMAP, **changes)


def graph(**changes: str | None) -> str:
    return account(GRAPH, **changes)


def ews(**changes: str | None) -> str:
    return account(EWS, **changes)


def maildir(**changes: str | None) -> str:
    return account(MAILDIR, **changes)


def section(header: str, *lines: str) -> str:
    """A table before the accounts, with one working imap account after it."""
    return f"[{header}]\n" + "\n".join(lines) + "\n" + imap()


def stages(*tables: str) -> str:
    return "".join(f"[[rules.stages]]\n{table}\n" for table in tables) + imap()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text.replace("$TMP", str(tmp_path)), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), ENV if environ is None else environ)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Files the snippets name as $TMP/...: a CA bundle, secrets, an empty secret, a directory."""
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "secret").write_text("from-a-file\n")
    (tmp_path / "empty-secret").write_text("\n")
    (tmp_path / "latin1-secret").write_bytes(b"caf\xe9\n")
    (tmp_path / "templates").mkdir()
    return tmp_path


# (TOML, the dotted key the message must name, a fragment of the message)
ERRORS = [
    # the document
    ("[deamon]\n" + imap(), "deamon", "unknown key (did you mean 'daemon'?)"),
    ("daemon = 3\n" + imap(), "daemon", "expected a table, got 3"),
    ("[daemon]\n", "accounts", "at least one [[accounts]]"),
    ('accounts = "dana"\n', "accounts", "expected an array of tables"),
    ("accounts = [3]\n", "accounts[0]", "expected a table"),
    # [daemon]
    (section("daemon", "state_dir = 3"), "daemon.state_dir", "expected a string, got 3"),
    (section("daemon", 'state_dir = ""'), "daemon.state_dir", "must not be empty"),
    (section("daemon", 'database = "relight.db"'), "daemon.database", "expected a database URL"),
    (
        section("daemon", 'database = "postgresql+psycopg://relight:pw@db/relight"'),
        "daemon.database",
        "PGPASSFILE",
    ),
    (section("daemon", 'timezone = "Mars/Base"'), "daemon.timezone", "unknown time zone"),
    (section("daemon", 'timezone = "America"'), "daemon.timezone", "unknown time zone"),
    (section("daemon", 'timezone = "../etc/passwd"'), "daemon.timezone", "unknown time zone"),
    (section("daemon", 'poll_interval = "5 minutes"'), "daemon.poll_interval", "duration like"),
    (section("daemon", "poll_interval = 300"), "daemon.poll_interval", "got 300"),
    (section("daemon", 'poll_interval = ""'), "daemon.poll_interval", "duration like"),
    (section("daemon", 'poll_interval = "5s"'), "daemon.poll_interval", "at least 10s"),
    (section("daemon", 'log_format = "xml"'), "daemon.log_format", 'one of "json", "console"'),
    (section("daemon", 'worker_id = " "'), "daemon.worker_id", "must not be empty"),
    (section("daemon", 'pollinterval = "5m"'), "daemon.pollinterval", "'poll_interval'?"),
    # [rules]
    (section("rules", 'group_by = "team"'), "rules.group_by", '"company", "contact"'),
    (section("rules", 'team_replies = "yes"'), "rules.team_replies", "true or false, got 'yes'"),
    (section("rules", 'internal_domains = "a.example"'), "rules.internal_domains", "an array"),
    (
        section("rules", 'internal_domains = ["a.example", "@b.example"]'),
        "rules.internal_domains[1]",
        "no '@'",
    ),
    (section("rules", 'freemail_domains = ["mail box"]'), "rules.freemail_domains[0]", "domain"),
    (section("rules", 'do_not_contact = ["someone"]'), "rules.do_not_contact[0]", "'someone'"),
    (section("rules", "do_not_contact = [3]"), "rules.do_not_contact[0]", "a string, got 3"),
    (section("rules", 'holidays = "DE"'), "rules.holidays", "expected a table"),
    (section("rules", 'holidays = { country = "Germany" }'), "rules.holidays.country", "two-let"),
    (section("rules", 'holidays = { subdivision = "BY" }'), "rules.holidays.country", "missing"),
    (
        section("rules", 'holidays = { country = "DE", region = "BY" }'),
        "rules.holidays.region",
        "unknown key",
    ),
    (section("rules", "max_followups = 5"), "rules.max_followups", "only 4 stages"),
    (section("rules", "max_followups = -1"), "rules.max_followups", "integer >= 0, got -1"),
    (section("rules", "max_followups = 2.5"), "rules.max_followups", "got 2.5"),
    (section("rules", "draft_cold = 1"), "rules.draft_cold", "true or false, got 1"),
    (section("rules", "snooze = 3"), "rules.snooze", "array of tables"),
    (
        section("rules", 'snooze = [{ address = "pat@c.example", until = "someday" }]'),
        "rules.snooze[0].until",
        "a date like 2026-12-01, got 'someday'",
    ),
    (
        section("rules", 'snooze = [{ address = "pat@c.example", until = 2026-12-01T09:00:00 }]'),
        "rules.snooze[0].until",
        "a date like",
    ),
    (section("rules", 'snooze = [{ address = "pat@c.example" }]'), "rules.snooze[0].until", "miss"),
    (
        section("rules", 'snooze = [{ address = "pat", until = 2026-12-01 }]'),
        "rules.snooze[0].address",
        "email address",
    ),
    (
        section(
            "rules",
            'snooze = [{ address = "pat@c.example", until = 2026-12-01 },',
            '          { address = "PAT@c.example", until = 2027-01-01 }]',
        ),
        "rules.snooze[1].address",
        "snoozed twice",
    ),
    (section("rules", "stages = []"), "rules.stages", "at least one stage"),
    (
        stages(
            'after_business_days = 3\nplaybook = "release_pressure"',
            'after_business_days = 5\nplaybook = "accountability"',
            'afterdays = 7\nplaybook = "apology"',
        ),
        "rules.stages[2].afterdays",
        "unknown key (did you mean 'after_business_days'?)",
    ),
    (
        stages("after_business_days = -1\nplaybook = 'x'"),
        "rules.stages[0].after_business_days",
        "from 0 to 365, got -1",
    ),
    (stages("after_business_days = 3"), "rules.stages[0].playbook", "missing required key"),
    (stages("playbook = 'x'"), "rules.stages[0].after_business_days", "missing required key"),
    (
        stages("after_business_days = 3\nplaybook = 'release pressure'"),
        "rules.stages[0].playbook",
        "letters, digits and '_'",
    ),
    (
        "[rules]\nmax_followups = 3\n"
        + stages(
            "after_business_days = 3\nplaybook = 'a'", "after_business_days = 5\nplaybook = 'b'"
        ),
        "rules.max_followups",
        "only 2 stages",
    ),
    # [drafts] and [privacy]
    (section("drafts", 'templates_dir = "$TMP/nowhere"'), "drafts.templates_dir", "no such dir"),
    (section("drafts", 'templates_dir = "$TMP/ca.pem"'), "drafts.templates_dir", "not a dir"),
    (section("drafts", "signature = 5"), "drafts.signature", "expected a string, got 5"),
    (section("drafts", 'retract_stale = "no"'), "drafts.retract_stale", "true or false"),
    (section("drafts", 'signatur = "Dana"'), "drafts.signatur", "unknown key"),
    (section("privacy", "excerpt_chars = 5001"), "privacy.excerpt_chars", "from 0 to 5000"),
    (section("privacy", "excerpt_chars = -1"), "privacy.excerpt_chars", "from 0 to 5000"),
    (section("privacy", 'excerpt_chars = "500"'), "privacy.excerpt_chars", "got '500'"),
    (section("privacy", "excerpt_chars = true"), "privacy.excerpt_chars", "got true"),
    # any account
    (imap(name=None), "accounts[0].name", "missing required key"),
    (imap(kind=None), "accounts[0].kind", "missing required key"),
    (imap(rep_name=None), "accounts[0].rep_name", "missing required key"),
    (imap(addresses=None), "accounts[0].addresses", "missing required key"),
    (imap(name='"dana smith"'), "accounts[0].name", "letters, digits"),
    (imap() + imap(), "accounts[1].name", "'dana' is already the name of accounts[0]"),
    (imap(kind='"pop3"'), "accounts[0].kind", '"imap", "graph", "ews", "maildir"'),
    (imap(rep_name='""'), "accounts[0].rep_name", "must not be empty"),
    (imap(addresses="[]"), "accounts[0].addresses", "at least 1 item"),
    (imap(addresses='"dana@acmesoft.example"'), "accounts[0].addresses", "expected an array"),
    (imap(addresses='["d@a.example", "dana"]'), "accounts[0].addresses[1]", "email address"),
    (imap(hots='"x"'), "accounts[0].hots", "unknown key (did you mean 'host'?)"),
    (imap(mailbox='"dana@acmesoft.example"'), "accounts[0].mailbox", "not used by imap"),
    ("[[accounts]]\nkind = 'imap'\nprot = 993\n", "accounts[0].prot", "did you mean 'port'?"),
    # secrets never in the file
    (imap(password='"hunter2"'), "accounts[0].password", "use password_env or password_file"),
    (graph(client_secret='"s"'), "accounts[0].client_secret", "use client_secret_env"),
    (ews(password='"hunter2"'), "accounts[0].password", "use password_env or password_file"),
    # imap
    (imap(host=None), "accounts[0].host", "missing required key"),
    (imap(port='"abc"'), "accounts[0].port", "expected an integer from 1 to 65535, got 'abc'"),
    (imap(port="0"), "accounts[0].port", "from 1 to 65535, got 0"),
    (imap(port="70000"), "accounts[0].port", "from 1 to 65535, got 70000"),
    (imap(security='"ssl"'), "accounts[0].security", '"tls", "starttls", "none"'),
    (imap(security='"none"'), "accounts[0].security", "only allowed to localhost"),
    (imap(security='"none"', host='"10.0.0.1"'), "accounts[0].security", "only allowed"),
    (imap(security='"none"', host='"localhost.evil.example"'), "accounts[0].security", "only"),
    (
        imap(security='"none"', host='"127.0.0.1"', tls_ca_file='"$TMP/ca.pem"'),
        "accounts[0].tls_ca_file",
        'not used with security = "none"',
    ),
    (imap(tls_ca_file='"$TMP/missing.pem"'), "accounts[0].tls_ca_file", "no such file"),
    (imap(tls_ca_file='"$TMP/templates"'), "accounts[0].tls_ca_file", "not a file"),
    (imap(username='""'), "accounts[0].username", "must not be empty"),
    (imap(password_file='"$TMP/secret"'), "accounts[0].password_file", "only one of"),
    (imap(password_env=None), "accounts[0]", "set password_env or password_file"),
    (imap(password_env='"UNSET"'), "accounts[0].password_env", "UNSET is not set"),
    (imap(password_env='"EMPTY"'), "accounts[0].password_env", "EMPTY is empty"),
    (imap(password_env='"not a name"'), "accounts[0].password_env", "environment variable name"),
    (
        imap(password_env=None, password_file='"$TMP/missing"'),
        "accounts[0].password_file",
        "no such file",
    ),
    (
        imap(password_env=None, password_file='"$TMP/empty-secret"'),
        "accounts[0].password_file",
        "the file is empty",
    ),
    (
        imap(password_env=None, password_file='"$TMP/latin1-secret"'),
        "accounts[0].password_file",
        "not UTF-8",
    ),
    (
        imap(password_env=None, password_file='"$TMP/templates"'),
        "accounts[0].password_file",
        "cannot read",
    ),
    (imap(timeout="0"), "accounts[0].timeout", "a number from 1 to 3600, got 0"),
    (imap(timeout='"30s"'), "accounts[0].timeout", "got '30s'"),
    # imap with auth = "oauth" (XOAUTH2)
    (imap(auth='"xoauth2"'), "accounts[0].auth", '"password", "oauth"'),
    (imap(auth='"ntlm"'), "accounts[0].auth", '"password", "oauth"'),
    (imap(auth='"oauth"'), "accounts[0].password_env", 'not used with auth = "oauth"'),
    (imap(tenant_id='"t"'), "accounts[0].tenant_id", 'not used with auth = "password"'),
    (imap(delegated="true"), "accounts[0].delegated", 'not used with auth = "password"'),
    (
        imap(auth='"oauth"', password_env=None, tenant_id='"t"', client_secret_env='"PW"'),
        "accounts[0].client_id",
        "missing required key",
    ),
    (
        imap(auth='"oauth"', password_env=None, tenant_id='"t"', client_id='"c"'),
        "accounts[0]",
        "set client_secret_env, client_secret_file or client_certificate_file",
    ),
    (
        imap(auth='"oauth"', password_env=None, password_file='"$TMP/secret"'),
        "accounts[0].password_file",
        'not used with auth = "oauth"',
    ),
    (
        imap(auth='"oauth"', password_env=None, host='"10.0.0.1"', security='"none"'),
        "accounts[0].security",
        "sends the token in clear text",
    ),
    # graph
    (graph(tenant_id=None), "accounts[0].tenant_id", "missing required key"),
    (graph(client_id='""'), "accounts[0].client_id", "must not be empty"),
    (graph(client_secret_env=None), "accounts[0]", "set client_secret_env, client_secret_file"),
    (
        graph(client_certificate_file='"$TMP/ca.pem"'),
        "accounts[0].client_certificate_file",
        "only one of client_secret_env and client_certificate_file",
    ),
    (
        graph(client_secret_env=None, client_certificate_file='"$TMP/none.pem"'),
        "accounts[0].client_certificate_file",
        "no such file",
    ),
    (graph(delegated="true"), "accounts[0].client_secret_env", "not used with delegated = true"),
    (graph(delegated='"yes"'), "accounts[0].delegated", "true or false"),
    (graph(client_secret_env='"UNSET"'), "accounts[0].client_secret_env", "UNSET is not set"),
    (graph(graph_url='"http://graph.example"'), "accounts[0].graph_url", "https://"),
    (graph(authority_url='"http://127.0.0.1:8080"'), "accounts[0].authority_url", "https://"),
    (graph(graph_url='"ftp://graph.example"'), "accounts[0].graph_url", "an https:// URL"),
    (graph(authority_url='"login"'), "accounts[0].authority_url", "an https:// URL"),
    (graph(host='"imap.example"'), "accounts[0].host", "not used by graph accounts"),
    (graph(password_env='"PW"'), "accounts[0].password_env", "not used by graph accounts"),
    # ews
    (ews(ews_url=None), "accounts[0].ews_url", "missing required key"),
    (ews(auth='"kerberos"'), "accounts[0].auth", '"ntlm", "basic", "oauth"'),
    (ews(auth='"oauth"'), "accounts[0].password_env", 'not used with auth = "oauth"'),
    (ews(tenant_id='"t"'), "accounts[0].tenant_id", 'not used with auth = "ntlm"'),
    (
        ews(auth='"oauth"', password_env=None, tenant_id='"t"', client_secret_env='"PW"'),
        "accounts[0].client_id",
        "missing required key",
    ),
    (ews(auth='"basic"', password_env=None), "accounts[0]", "set password_env or password_file"),
    (ews(ews_url='"http://mail.acmesoft.example/EWS"'), "accounts[0].ews_url", "plain http"),
    (ews(graph_url='"https://x.example"'), "accounts[0].graph_url", "not used by ews accounts"),
    # maildir
    (maildir(path=None), "accounts[0].path", "missing required key"),
    (maildir(sent_folder='""'), "accounts[0].sent_folder", "must not be empty"),
    (maildir(host='"x"'), "accounts[0].host", "not used by maildir accounts"),
    (maildir(timeout="30"), "accounts[0].timeout", "not used by maildir accounts"),
    (maildir(password_env='"PW"'), "accounts[0].password_env", "not used by maildir accounts"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), ERRORS)
def test_error_names_the_key(files: Path, text: str, key: str, fragment: str) -> None:
    """Each bad config is refused with a one-line message naming the file and the dotted key."""
    with pytest.raises(ConfigError) as caught:
        load(files, text)
    error = caught.value
    assert error.key == key
    assert error.path == files / "config.toml"
    assert str(error) == f"{files / 'config.toml'}: {key}: {error.message}"
    assert fragment in error.message
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    "text",
    [
        imap(password='"hunter2"'),
        section("daemon", 'database = "postgresql://relight:hunter2@db/relight"'),
        imap(password_env='"PW"', timeout="0"),
    ],
)
def test_error_never_echoes_a_secret(tmp_path: Path, text: str) -> None:
    """A message about a secret, or about a key next to one, does not contain the secret."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda p: None, "no such file (use --config PATH or $RELIGHT_CONFIG)"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_text('[daemon]\npoll_interval = "5m\n'), "TOML syntax error"),
        (lambda p: p.write_text("[daemon]\n\nlog_format json\n"), "at line 3"),
        (lambda p: p.write_bytes(b"# caf\xe9\n"), "not UTF-8 text"),
    ],
)
def test_unreadable_file(tmp_path: Path, setup: object, fragment: str) -> None:
    """A missing, unreadable or malformed file is a ConfigError naming the file (and the line)."""
    path = tmp_path / "config.toml"
    setup(path)  # type: ignore[operator]
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert str(caught.value).startswith(f"{path}: ")
    assert fragment in str(caught.value)


def test_config_error_without_a_file() -> None:
    """Without a path the message is just key and text; without a key just the text."""
    assert str(ConfigError("boom", key="daemon.x")) == "daemon.x: boom"
    assert str(ConfigError("boom", path=Path("/c.toml"))) == "/c.toml: boom"


def test_parse_config_checks_a_mapping() -> None:
    """parse_config takes a parsed document and refuses it with the key, and no file name."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"accounts": [{"kind": "imap"}]}, environ=ENV)
    assert str(caught.value) == "accounts[0].name: missing required key"


def test_defaults(tmp_path: Path) -> None:
    """An imap account and nothing else gives the documented defaults everywhere."""
    config = load(tmp_path, imap())
    assert config.daemon == DaemonSettings(
        state_dir=Path("/var/lib/relight"),
        database="sqlite:////var/lib/relight/relight.db",
        timezone="UTC",
        poll_interval=timedelta(minutes=5),
        log_format="json",
        worker_id=None,
    )
    assert config.rules == RulesSettings()
    assert config.rules.stages == (
        Stage(3, "release_pressure"),
        Stage(5, "accountability"),
        Stage(7, "apology"),
        Stage(10, "closure"),
    )
    assert config.rules.max_followups == 4
    assert (config.rules.group_by, config.rules.team_replies) == ("company", True)
    assert config.rules.holidays is None
    assert config.drafts == DraftSettings(templates_dir=None, signature="", retract_stale=True)
    assert config.privacy == PrivacySettings(excerpt_chars=500)
    dana = config.account("dana")
    assert (dana.host, dana.port, dana.security) == ("imap.acmesoft.example", 993, "tls")
    assert (dana.username, dana.password, dana.timeout) == ("dana@acmesoft.example", "hunter2", 30)
    assert dana.tls_ca_file is None
    assert (dana.mailbox, dana.path, dana.client_secret) == (None, None, None)
    assert config.path == tmp_path / "config.toml"


@pytest.mark.parametrize(
    ("security", "host", "port"),
    [
        ("tls", "imap.example", 993),
        ("starttls", "imap.example", 143),
        ("none", "localhost", 143),
        ("none", "127.0.0.1", 143),
        ("none", "127.1.2.3", 143),
        ("none", "::1", 143),
        ("none", "[::1]", 143),
    ],
)
def test_imap_port_follows_security(tmp_path: Path, security: str, host: str, port: int) -> None:
    """The default port is 993 for tls, 143 otherwise; "none" is accepted on loopback hosts."""
    dana = load(tmp_path, imap(security=f'"{security}"', host=f'"{host}"')).accounts[0]
    assert (dana.security, dana.port) == (security, port)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10s", timedelta(seconds=10)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2h0m5s", timedelta(hours=2, seconds=5)),
        (" 90s ", timedelta(seconds=90)),
    ],
)
def test_poll_interval(tmp_path: Path, text: str, expected: timedelta) -> None:
    """poll_interval reads hours, minutes and seconds written as 1h30m and the like."""
    config = load(tmp_path, section("daemon", f'poll_interval = "{text}"'))
    assert config.daemon.poll_interval == expected


def test_daemon_settings(tmp_path: Path) -> None:
    """The database defaults into state_dir; relative paths are read from the file's directory."""
    config = load(
        tmp_path,
        section(
            "daemon",
            'state_dir = "state"',
            'timezone = "Europe/Berlin"',
            'log_format = "console"',
            'worker_id = "relight-2"',
        ),
    )
    assert config.daemon.state_dir == tmp_path / "state"
    assert config.daemon.database == f"sqlite:///{tmp_path}/state/relight.db"
    assert (config.daemon.timezone, config.daemon.log_format) == ("Europe/Berlin", "console")
    assert config.daemon.worker_id == "relight-2"
    url = "postgresql+psycopg://relight@db.example/relight"
    assert load(tmp_path, section("daemon", f'database = "{url}"')).daemon.database == url


def test_rules_settings(tmp_path: Path) -> None:
    """Domains and addresses are lower-cased; holidays, stages and snoozes are read as written."""
    config = load(
        tmp_path,
        "[rules]\n"
        'group_by = "contact"\n'
        "team_replies = false\n"
        'internal_domains = ["Partner.Example"]\n'
        'freemail_domains = ["MAIL.example"]\n'
        'do_not_contact = ["@Competitor.example", "Someone@Example.com"]\n'
        'holidays = { country = "de", subdivision = "BY" }\n'
        "draft_cold = true\n"
        'snooze = [{ address = "Pat@Customer.example", until = 2026-12-01 }]\n'
        + stages(
            "after_business_days = 2\nplaybook = 'nudge'", "after_business_days = 0\nplaybook = 'x'"
        ),
    )
    rules = config.rules
    assert (rules.group_by, rules.team_replies, rules.draft_cold) == ("contact", False, True)
    assert rules.internal_domains == ("partner.example",)
    assert rules.freemail_domains == ("mail.example",)
    assert rules.do_not_contact == ("@competitor.example", "someone@example.com")
    assert rules.holidays == Holidays("DE", "BY")
    assert rules.stages == (Stage(2, "nudge"), Stage(0, "x"))
    assert rules.max_followups == 2
    assert rules.snooze == (Snooze("pat@customer.example", date(2026, 12, 1)),)
    [(address, until)] = rules.snooze
    assert (address, until) == ("pat@customer.example", date(2026, 12, 1))


def test_max_followups_may_stop_drafts(tmp_path: Path) -> None:
    """max_followups = 0 is valid: statuses are still reported, no follow-up is drafted."""
    assert load(tmp_path, section("rules", "max_followups = 0")).rules.max_followups == 0


def test_holiday_calendar_is_checked_when_available(tmp_path: Path) -> None:
    """With the holidays package installed, unknown countries and subdivisions are refused."""
    pytest.importorskip("holidays")
    with pytest.raises(ConfigError, match=r"rules\.holidays\.country: no holiday calendar"):
        load(tmp_path, section("rules", 'holidays = { country = "XX" }'))
    with pytest.raises(ConfigError, match=r"rules\.holidays\.subdivision: DE has no 'ZZ'"):
        load(tmp_path, section("rules", 'holidays = { country = "DE", subdivision = "ZZ" }'))
    config = load(tmp_path, section("rules", 'holidays = { country = "de", subdivision = "by" }'))
    assert config.rules.holidays == Holidays("DE", "BY")


def test_drafts_and_privacy(files: Path) -> None:
    """templates_dir must be a directory; the signature keeps its line breaks."""
    config = load(
        files,
        "[drafts]\n"
        'templates_dir = "templates"\n'
        'signature = "Dana Reyes\\nAcmeSoft"\n'
        "retract_stale = false\n"
        "[privacy]\nexcerpt_chars = 0\n" + imap(),
    )
    assert config.drafts == DraftSettings(
        templates_dir=files / "templates", signature="Dana Reyes\nAcmeSoft", retract_stale=False
    )
    assert config.privacy.excerpt_chars == 0


def test_unreadable_templates_dir(tmp_path: Path) -> None:
    """A templates_dir the daemon may not list is refused when the file is read."""
    (tmp_path / "templates").mkdir(mode=0o100)
    if os.access(tmp_path / "templates", os.R_OK):
        pytest.skip("this user reads any directory (root)")
    with pytest.raises(ConfigError, match=r"drafts\.templates_dir: not readable"):
        load(tmp_path, section("drafts", 'templates_dir = "templates"'))


def test_addresses_are_lowercased_and_deduplicated(tmp_path: Path) -> None:
    """Own addresses compare case-insensitively; own_domains are their domains."""
    text = imap(addresses='["Dana@AcmeSoft.example", "dana@acmesoft.example", "d@acme.de"]')
    dana = load(tmp_path, text).accounts[0]
    assert dana.addresses == ("dana@acmesoft.example", "d@acme.de")
    assert dana.own_domains == frozenset({"acmesoft.example", "acme.de"})
    assert dana.username == "dana@acmesoft.example"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hunter2\n", "hunter2"),
        ("hunter2\r\n", "hunter2"),
        ("hunter2", "hunter2"),
        (" pass phrase \n\n", " pass phrase "),
    ],
)
def test_password_from_file(tmp_path: Path, content: str, expected: str) -> None:
    """password_file is read without its trailing newlines, relative to the config's directory."""
    (tmp_path / "dana.secret").write_text(content, encoding="utf-8")
    text = imap(password_env=None, password_file='"dana.secret"')
    assert load(tmp_path, text, environ={}).accounts[0].password == expected


def test_password_from_env(tmp_path: Path) -> None:
    """password_env names the environment variable that holds the password."""
    text = imap(password_env='"RELIGHT_DANA_PASSWORD"')
    dana = load(tmp_path, text, environ={"RELIGHT_DANA_PASSWORD": "pw from env"}).accounts[0]
    assert dana.password == "pw from env"


def test_repr_hides_secrets(files: Path) -> None:
    """No repr or str of the config shows a password or a client secret."""
    config = load(
        files, imap() + graph() + ews(name='"kim"', password_env='"KIM"'), {**ENV, "KIM": "kim-pw"}
    )
    assert config.account("lee").client_secret == "s3cret-graph"
    assert config.account("kim").password == "kim-pw"
    for text in (repr(config), str(config), repr(config.accounts), repr(config.account("dana"))):
        for secret in ("hunter2", "s3cret-graph", "kim-pw"):
            assert secret not in text
    assert "password_env" not in repr(config.account("dana"))  # nothing else to hide


def test_graph_account(files: Path) -> None:
    """A graph account defaults mailbox and URLs; a certificate or delegation replaces a secret."""
    config = load(
        files,
        graph()
        + graph(name='"cert"', client_secret_env=None, client_certificate_file='"ca.pem"')
        + graph(name='"deleg"', client_secret_env=None, delegated="true", mailbox='"id-123"')
        + graph(
            name='"gov"',
            graph_url='"https://graph.microsoft.us/v1.0/"',
            authority_url='"https://127.0.0.1:8443"',
            tls_ca_file='"ca.pem"',
            timeout="12.5",
        ),
    )
    lee = config.account("lee")
    assert (lee.mailbox, lee.tenant_id, lee.client_id) == (
        "lee@acmesoft.example",
        "tenant",
        "client",
    )
    assert lee.graph_url == "https://graph.microsoft.com/v1.0"
    assert lee.authority_url == "https://login.microsoftonline.com"
    assert (lee.client_secret, lee.client_certificate_file, lee.delegated) == (
        "s3cret-graph",
        None,
        False,
    )
    assert (lee.host, lee.port, lee.security, lee.username, lee.password) == (None,) * 5
    cert = config.account("cert")
    assert (cert.client_secret, cert.client_certificate_file) == (None, files / "ca.pem")
    deleg = config.account("deleg")
    assert (deleg.delegated, deleg.client_secret, deleg.mailbox) == (True, None, "id-123")
    gov = config.account("gov")
    assert gov.graph_url == "https://graph.microsoft.us/v1.0"
    assert gov.authority_url == "https://127.0.0.1:8443"
    assert (gov.tls_ca_file, gov.timeout) == (files / "ca.pem", 12.5)


def test_ews_account(tmp_path: Path) -> None:
    """An ews account logs in with username and password, or with an app registration for oauth."""
    config = load(
        tmp_path,
        ews(username='"ACMESOFT\\\\kim"')
        + ews(
            name='"kim2"',
            auth='"oauth"',
            password_env=None,
            tenant_id='"t"',
            client_id='"c"',
            client_secret_env='"GRAPH_SECRET"',
        ),
    )
    kim = config.account("kim")
    assert (kim.auth, kim.username, kim.password) == ("ntlm", "ACMESOFT\\kim", "hunter2")
    assert (kim.mailbox, kim.ews_url) == (
        "kim@acmesoft.example",
        "https://mail.acmesoft.example/EWS/Exchange.asmx",
    )
    kim2 = config.account("kim2")
    assert (kim2.auth, kim2.username, kim2.password) == ("oauth", None, None)
    assert (kim2.tenant_id, kim2.client_id, kim2.client_secret) == ("t", "c", "s3cret-graph")
    assert kim2.authority_url == "https://login.microsoftonline.com"


def test_imap_oauth_account(files: Path) -> None:
    """An imap account with auth = "oauth" takes the graph-style app registration keys
    instead of a password; username is the mailbox of the XOAUTH2 string."""
    config = load(
        files,
        imap(
            auth='"oauth"',
            host='"outlook.office365.com"',
            password_env=None,
            tenant_id='"t"',
            client_id='"c"',
            client_secret_env='"GRAPH_SECRET"',
        )
        + imap(
            name='"cert"',
            auth='"oauth"',
            username='"shared@acmesoft.example"',
            password_env=None,
            tenant_id='"t"',
            client_id='"c"',
            client_certificate_file='"ca.pem"',
            authority_url='"https://127.0.0.1:8443"',
        )
        + imap(
            name='"deleg"',
            auth='"oauth"',
            password_env=None,
            tenant_id='"t"',
            client_id='"c"',
            delegated="true",
        )
        + imap(name='"pw"', auth='"password"'),
    )
    dana = config.account("dana")
    assert (dana.auth, dana.host, dana.port, dana.security) == (
        "oauth",
        "outlook.office365.com",
        993,
        "tls",
    )
    assert (dana.username, dana.password) == ("dana@acmesoft.example", None)
    assert (dana.tenant_id, dana.client_id, dana.client_secret) == ("t", "c", "s3cret-graph")
    assert (dana.delegated, dana.authority_url) == (False, "https://login.microsoftonline.com")
    assert "s3cret-graph" not in repr(dana)
    cert = config.account("cert")
    assert (cert.username, cert.client_secret) == ("shared@acmesoft.example", None)
    assert cert.client_certificate_file == files / "ca.pem"
    assert cert.authority_url == "https://127.0.0.1:8443"
    deleg = config.account("deleg")
    assert (deleg.delegated, deleg.client_secret) == (True, None)
    pw = config.account("pw")
    assert (pw.auth, pw.password, pw.tenant_id) == ("password", "hunter2", None)
    assert config.accounts[0].auth == "oauth"
    assert load(files, imap()).accounts[0].auth == "password"  # the default


def test_maildir_account(tmp_path: Path) -> None:
    """A maildir account needs only a path; without sent_folder / drafts_folder the
    connector finds the special folders by their usual names."""
    config = load(
        tmp_path, maildir() + maildir(name='"rel"', path='"Mail"', drafts_folder='".Entw"')
    )
    me = config.account("me")
    assert (me.path, me.sent_folder, me.drafts_folder) == (
        Path("/home/dana/Mail/work"),
        None,
        None,
    )
    assert (me.host, me.timeout, me.password) == (None, None, None)
    assert config.account("rel").path == tmp_path / "Mail"
    assert config.account("rel").drafts_folder == ".Entw"


def test_unknown_account_name(tmp_path: Path) -> None:
    """Config.account() of an unknown name is a ConfigError for --account listing known names."""
    config = load(tmp_path, imap() + maildir())
    with pytest.raises(ConfigError) as caught:
        config.account("dnaa")
    assert caught.value.key == "--account"
    assert "'dnaa'" in caught.value.message
    assert "dana, me" in caught.value.message


def test_secrets_can_be_left_unresolved(tmp_path: Path) -> None:
    """resolve_secrets=False checks the credential keys but needs neither variable nor file."""
    text = imap(password_env='"UNSET"') + graph(client_secret_env=None, client_secret_file='"x"')
    config = load_config(write(tmp_path, text), {}, resolve_secrets=False)
    assert [account.password for account in config.accounts] == [None, None]
    assert config.account("lee").client_secret is None
    with pytest.raises(ConfigError, match=r"accounts\[0\]: set password_env or password_file"):
        load_config(write(tmp_path, imap(password_env=None)), {}, resolve_secrets=False)


def test_resolve_config_path_order() -> None:
    """--config wins over $RELIGHT_CONFIG, which wins over /etc/relight/config.toml."""
    env = {"RELIGHT_CONFIG": "/srv/relight.toml"}
    assert resolve_config_path("/tmp/cli.toml", env) == Path("/tmp/cli.toml")
    assert resolve_config_path(None, env) == Path("/srv/relight.toml")
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH == Path("/etc/relight/config.toml")
    assert resolve_config_path(None, {"RELIGHT_CONFIG": ""}) == DEFAULT_CONFIG_PATH
    with pytest.raises(ConfigError) as caught:
        resolve_config_path("", env)
    assert caught.value.key == "--config"


def test_dataclasses_are_frozen(tmp_path: Path) -> None:
    """A loaded config cannot be changed in place."""
    config = load(tmp_path, imap())
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.accounts[0].port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.daemon.timezone = "Europe/Berlin"  # type: ignore[misc]


def test_dataclasses_can_be_built_directly() -> None:
    """Tests elsewhere build an account and a Config by hand, with defaults for the rest."""
    account = AccountConfig(name="t", kind="imap", rep_name="T", addresses=("t@x.example",))
    config = Config(accounts=(account,))
    assert config.rules.stages == DEFAULT_STAGES
    assert config.account("t") is account
    assert config.path is None


# -- config.example.toml --------------------------------------------------------

EXAMPLE_ENV = {
    "RELIGHT_DANA_PASSWORD": "dana-pw",
    "RELIGHT_GRAPH_SECRET": "graph-secret",
    "RELIGHT_KIM_PASSWORD": "kim-pw",
}


def test_example_loads() -> None:
    """config.example.toml is a valid config once the variables it names are set."""
    config = load_config(EXAMPLE, EXAMPLE_ENV)
    assert [(a.name, a.kind) for a in config.accounts] == [
        ("dana", "imap"),
        ("lee", "graph"),
        ("kim", "ews"),
        ("me", "maildir"),
    ]
    assert config.account("dana").password == "dana-pw"
    assert config.account("lee").client_secret == "graph-secret"
    assert config.account("kim").password == "kim-pw"
    assert config.daemon == DaemonSettings()
    assert config.rules == RulesSettings()


def test_example_names_every_field() -> None:
    """Every field of the config dataclasses is documented as a key in config.example.toml."""
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = set(re.findall(r"([a-z_]+)\s*=", text)) | set(re.findall(r"\[+([a-z_.]+)\]+", text))
    keys |= {part for key in keys for part in key.split(".")}
    # Fields that are not keys themselves, and the keys they come from.
    derived = {
        "password": {"password_env", "password_file"},
        "client_secret": {"client_secret_env", "client_secret_file"},
        "path": set(),  # Config.path: the file itself (AccountConfig.path is a key)
    }
    classes = (
        Config,
        DaemonSettings,
        RulesSettings,
        Stage,
        Holidays,
        DraftSettings,
        PrivacySettings,
        AccountConfig,
    )
    names = {f.name for cls in classes for f in dataclasses.fields(cls)} | set(Snooze._fields)
    missing = {name for name in names if name not in keys and name not in derived}
    missing |= {key for name in derived for key in derived[name] if key not in keys}
    assert "path" in keys
    assert not missing, f"not in config.example.toml: {sorted(missing)}"


def test_an_account_signature_is_its_own(tmp_path: Path) -> None:
    """`signature` on an account is that rep's; without one, drafts.signature serves."""
    config = load(tmp_path, maildir() + maildir(name='"lee"', signature='"Lee Park\\nAcmeSoft"'))
    assert config.account("lee").signature == "Lee Park\nAcmeSoft"
    assert config.account("me").signature is None
