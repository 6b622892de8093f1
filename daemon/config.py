"""The configuration file: what it may say, read and checked once into frozen values.

`load_config` reads the TOML file (SPEC section 8) and `parse_config` turns its
tables into the dataclasses below, or raises one `ConfigError` whose text names
the file and the dotted key (`accounts[0].port: expected an integer from 1 to
65535, got 'abc'`). Nothing downstream re-validates: a `Config` in hand is
usable. How a single value is read lives in `daemon.config_schema`; this module
holds the keys, their defaults and the checks that involve several keys.

The playbook templates (`drafts.templates_dir`, `[[rules.stages]]` playbooks) are the
exception: `daemon.playbooks.load_playbooks(config)` reads and compiles them, and
`check-config` and the commands that draft call it. Loading them here would put the
Jinja2 import on every command's start-up, `report` included.

Secrets never sit in the file. A key names an environment variable or a file
(`password_env`, `password_file`; `client_secret_env`, `client_secret_file`),
and the secret itself is read here, so that `check-config` reports a missing
credential before the daemon starts. Secret fields are left out of every repr.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Literal, NamedTuple

from daemon.config_schema import (
    ConfigError,
    Table,
    address,
    address_or_domain,
    array,
    boolean,
    calendar_date,
    choice,
    database_url,
    directory,
    domain,
    duration,
    env_name,
    file_path,
    http_url,
    https_url,
    identifier,
    integer,
    is_loopback,
    matching,
    number,
    readable_file,
    string,
    text,
    timezone_name,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_STAGES",
    "AccountConfig",
    "AccountKind",
    "Config",
    "ConfigError",
    "DaemonSettings",
    "DraftSettings",
    "Holidays",
    "PrivacySettings",
    "RulesSettings",
    "Snooze",
    "Stage",
    "load_config",
    "parse_config",
    "resolve_config_path",
]

DEFAULT_CONFIG_PATH = Path("/etc/relight/config.toml")
DEFAULT_STATE_DIR = Path("/var/lib/relight")
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com"

LogFormat = Literal["json", "console"]
GroupBy = Literal["company", "contact"]
AccountKind = Literal["imap", "graph", "ews", "maildir"]
Security = Literal["tls", "starttls", "none"]
EwsAuth = Literal["ntlm", "basic", "oauth"]
ImapAuth = Literal["password", "oauth"]

_LOG_FORMATS: tuple[LogFormat, ...] = ("json", "console")
_GROUP_BYS: tuple[GroupBy, ...] = ("company", "contact")
_KINDS: tuple[AccountKind, ...] = ("imap", "graph", "ews", "maildir")
_SECURITIES: tuple[Security, ...] = ("tls", "starttls", "none")
_EWS_AUTHS: tuple[EwsAuth, ...] = ("ntlm", "basic", "oauth")
_IMAP_AUTHS: tuple[ImapAuth, ...] = ("password", "oauth")


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonSettings:
    state_dir: Path = DEFAULT_STATE_DIR
    database: str = f"sqlite:///{DEFAULT_STATE_DIR}/relight.db"
    timezone: str = "UTC"
    poll_interval: timedelta = timedelta(minutes=5)
    log_format: LogFormat = "json"
    worker_id: str | None = None


@dataclass(frozen=True, slots=True)
class Stage:
    after_business_days: int
    playbook: str


DEFAULT_STAGES = (
    Stage(3, "release_pressure"),
    Stage(5, "accountability"),
    Stage(7, "apology"),
    Stage(10, "closure"),
)


@dataclass(frozen=True, slots=True)
class Holidays:
    country: str
    subdivision: str | None = None


class Snooze(NamedTuple):
    """No drafts to `address` before `until` (an admin's pause)."""

    address: str
    until: date


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesSettings:
    group_by: GroupBy = "company"
    team_replies: bool = True
    internal_domains: tuple[str, ...] = ()
    freemail_domains: tuple[str, ...] = ()  # on top of the built-in list
    do_not_contact: tuple[str, ...] = ()  # "name@example.com" or "@example.com"
    holidays: Holidays | None = None
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    max_followups: int = len(DEFAULT_STAGES)
    draft_cold: bool = False
    snooze: tuple[Snooze, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftSettings:
    templates_dir: Path | None = None
    signature: str = ""
    retract_stale: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivacySettings:
    excerpt_chars: int = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountConfig:
    """One `[[accounts]]` entry. Fields that the kind does not use are None."""

    name: str
    kind: AccountKind
    rep_name: str
    addresses: tuple[str, ...]
    signature: str | None = None  # this rep's drafts; None: drafts.signature
    # imap; username and password also serve ews, tls_ca_file and timeout every network kind
    host: str | None = None
    port: int | None = None
    security: Security | None = None
    tls_ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float | None = None
    # graph, and imap and ews with auth = "oauth"
    mailbox: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_certificate_file: Path | None = None
    delegated: bool = False  # the rep signs in with `relight auth`; no client secret
    graph_url: str | None = None
    authority_url: str | None = None
    # ews; auth also imap ("password" or "oauth": XOAUTH2 with a token for `username`)
    ews_url: str | None = None
    auth: EwsAuth | ImapAuth | None = None
    # maildir
    path: Path | None = None
    sent_folder: str | None = None
    drafts_folder: str | None = None

    @property
    def own_domains(self) -> frozenset[str]:
        return frozenset(addr.rpartition("@")[2] for addr in self.addresses)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    drafts: DraftSettings = field(default_factory=DraftSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    accounts: tuple[AccountConfig, ...]
    path: Path | None = None  # the file it was read from

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        known = ", ".join(account.name for account in self.accounts)
        raise ConfigError(
            f"no account named {name!r} (known: {known})", key="--account", path=self.path
        )


# -- finding and loading the file ---------------------------------------------


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--config, else $RELIGHT_CONFIG (when set and not empty), else the default path."""
    if cli_value is not None:
        if not cli_value.strip():
            raise ConfigError("expected a file path, got ''", key="--config")
        return Path(cli_value).expanduser()
    from_env = environ.get("RELIGHT_CONFIG", "").strip()
    return Path(from_env).expanduser() if from_env else DEFAULT_CONFIG_PATH


def load_config(
    path: Path, environ: Mapping[str, str] = os.environ, *, resolve_secrets: bool = True
) -> Config:
    """Read and check the file. `resolve_secrets=False` checks the credential keys but
    leaves the secrets unread (None), for commands that never reach a mailbox."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no such file (use --config PATH or $RELIGHT_CONFIG)", path=path
        ) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=path) from None
    except PermissionError:
        raise ConfigError("not readable (permission denied)", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"TOML syntax error: {exc}", path=path) from None
    return parse_config(data, path=path, environ=environ, resolve_secrets=resolve_secrets)


# -- checking the tables --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    base: Path | None  # relative paths in the file are read from here
    environ: Mapping[str, str]
    resolve_secrets: bool


def parse_config(
    data: Mapping[str, object],
    *,
    path: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    resolve_secrets: bool = True,
) -> Config:
    """Check an already parsed TOML document and build the `Config`."""
    ctx = _Context(path.parent if path is not None else None, environ, resolve_secrets)
    doc = Table.at(data, "", path)
    doc.allow(("daemon", "rules", "drafts", "privacy", "accounts"))
    daemon = _daemon(doc.table("daemon"), ctx)
    rules = _rules(doc.table("rules"))
    drafts = _drafts(doc.table("drafts"), ctx)
    privacy = _privacy(doc.table("privacy"))
    account_tables = doc.tables("accounts")
    if not account_tables:
        raise doc.error("accounts", "add at least one [[accounts]] table")
    accounts = tuple(_account(table, ctx) for table in account_tables)
    for i, account in enumerate(accounts):
        for j in range(i):
            if accounts[j].name == account.name:
                message = f"{account.name!r} is already the name of accounts[{j}]"
                raise account_tables[i].error("name", message)
    return Config(
        daemon=daemon, rules=rules, drafts=drafts, privacy=privacy, accounts=accounts, path=path
    )


def _daemon(t: Table, ctx: _Context) -> DaemonSettings:
    t.allow(("state_dir", "database", "timezone", "poll_interval", "log_format", "worker_id"))
    state_dir = t.optional("state_dir", file_path(ctx.base), DEFAULT_STATE_DIR)
    return DaemonSettings(
        state_dir=state_dir,
        database=t.optional("database", database_url, f"sqlite:///{state_dir}/relight.db"),
        timezone=t.optional("timezone", timezone_name, "UTC"),
        poll_interval=t.optional(
            "poll_interval", duration(timedelta(seconds=10)), timedelta(minutes=5)
        ),
        log_format=t.optional("log_format", choice(_LOG_FORMATS), "json"),
        worker_id=t.optional("worker_id", text, None),
    )


_RULES_KEYS = (
    *("group_by", "team_replies", "internal_domains", "freemail_domains", "do_not_contact"),
    *("holidays", "stages", "max_followups", "draft_cold", "snooze"),
)


def _rules(t: Table) -> RulesSettings:
    t.allow(_RULES_KEYS)
    stages = _stages(t)
    max_followups = t.optional("max_followups", integer(0), len(stages))
    if max_followups > len(stages):
        message = f"is {max_followups}, but there are only {len(stages)} stages to send"
        raise t.error("max_followups", message)
    return RulesSettings(
        group_by=t.optional("group_by", choice(_GROUP_BYS), "company"),
        team_replies=t.optional("team_replies", boolean, True),
        internal_domains=t.optional("internal_domains", array(domain), ()),
        freemail_domains=t.optional("freemail_domains", array(domain), ()),
        do_not_contact=t.optional("do_not_contact", array(address_or_domain), ()),
        holidays=_holidays(t.table("holidays")) if t.has("holidays") else None,
        stages=stages,
        max_followups=max_followups,
        draft_cold=t.optional("draft_cold", boolean, False),
        snooze=_snoozes(t),
    )


def _stages(rules: Table) -> tuple[Stage, ...]:
    if not rules.has("stages"):
        return DEFAULT_STAGES
    tables = rules.tables("stages")
    if not tables:
        raise rules.error("stages", "needs at least one stage (max_followups = 0 stops drafts)")
    stages = []
    for t in tables:
        t.allow(("after_business_days", "playbook"))
        after = t.required("after_business_days", integer(0, 365))
        stages.append(Stage(after, t.required("playbook", identifier)))
    return tuple(stages)


# The `holidays` package, when installed, tells which calendars exist.
_holiday_calendars: ModuleType | None
try:
    _holiday_calendars = importlib.import_module("holidays")
except ImportError:
    _holiday_calendars = None


def _holidays(t: Table) -> Holidays:
    t.allow(("country", "subdivision"))
    country = t.required("country", matching(r"[A-Za-z]{2}", "a two-letter country code")).upper()
    subdivision = t.optional("subdivision", text, None)
    if _holiday_calendars is not None:
        supported: Mapping[str, list[str]] = _holiday_calendars.list_supported_countries()
        if country not in supported:
            raise t.error("country", f"no holiday calendar for {country!r}")
        if subdivision is not None:
            by_upper = {code.upper(): code for code in supported[country]}
            if subdivision.upper() not in by_upper:
                known = ", ".join(supported[country]) or "none"
                raise t.error("subdivision", f"{country} has no {subdivision!r} (known: {known})")
            subdivision = by_upper[subdivision.upper()]
    return Holidays(country, subdivision)


def _snoozes(rules: Table) -> tuple[Snooze, ...]:
    snoozes: dict[str, Snooze] = {}
    for t in rules.tables("snooze"):
        t.allow(("address", "until"))
        snooze = Snooze(t.required("address", address), t.required("until", calendar_date))
        if snooze.address in snoozes:
            raise t.error("address", f"{snooze.address} is snoozed twice")
        snoozes[snooze.address] = snooze
    return tuple(snoozes.values())


def _drafts(t: Table, ctx: _Context) -> DraftSettings:
    t.allow(("templates_dir", "signature", "retract_stale"))
    return DraftSettings(
        templates_dir=t.optional("templates_dir", directory(ctx.base), None),
        signature=t.optional("signature", string, ""),
        retract_stale=t.optional("retract_stale", boolean, True),
    )


def _privacy(t: Table) -> PrivacySettings:
    t.allow(("excerpt_chars",))
    return PrivacySettings(excerpt_chars=t.optional("excerpt_chars", integer(0, 5000), 500))


# -- accounts -------------------------------------------------------------------

_COMMON_KEYS = ("name", "kind", "rep_name", "addresses", "signature")
_PASSWORD_KEYS = ("username", "password_env", "password_file")
_CLIENT_KEYS = ("client_secret_env", "client_secret_file", "client_certificate_file")
_OAUTH_KEYS = ("tenant_id", "client_id", *_CLIENT_KEYS, "delegated", "authority_url")
_NETWORK_KEYS = ("tls_ca_file", "timeout")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "imap": ("host", "port", "security", "auth", *_PASSWORD_KEYS, *_OAUTH_KEYS, *_NETWORK_KEYS),
    "graph": ("mailbox", *_OAUTH_KEYS, "graph_url", *_NETWORK_KEYS),
    "ews": ("mailbox", "ews_url", "auth", *_PASSWORD_KEYS, *_OAUTH_KEYS, *_NETWORK_KEYS),
    "maildir": ("path", "sent_folder", "drafts_folder"),
}
_ALL_ACCOUNT_KEYS = tuple(dict.fromkeys(_COMMON_KEYS + sum(_KIND_KEYS.values(), ())))
_SECRET_IN_FILE = {
    "password": "secrets never go in this file; use password_env or password_file",
    "client_secret": (
        "secrets never go in this file; use client_secret_env, client_secret_file "
        "or client_certificate_file"
    ),
}
_NAME = matching(r"[A-Za-z0-9_.-]+", "a name of letters, digits, '_', '.' or '-'")


def _account(t: Table, ctx: _Context) -> AccountConfig:
    t.allow(_ALL_ACCOUNT_KEYS, _SECRET_IN_FILE)
    kind = t.required("kind", choice(_KINDS))
    t.allow(
        _COMMON_KEYS + _KIND_KEYS[kind],
        dict.fromkeys(_ALL_ACCOUNT_KEYS, f"not used by {kind} accounts"),
    )
    name = t.required("name", _NAME)
    rep_name = t.required("rep_name", text)
    addresses = tuple(dict.fromkeys(t.required("addresses", array(address, min_items=1))))
    signature = t.optional("signature", string, None)
    common = AccountConfig(
        name=name, kind=kind, rep_name=rep_name, addresses=addresses, signature=signature
    )
    if kind == "imap":
        return _imap(t, common, ctx)
    if kind == "graph":
        return _graph(t, common, ctx)
    if kind == "ews":
        return _ews(t, common, ctx)
    return replace(
        common,
        path=t.required("path", file_path(ctx.base)),
        sent_folder=t.optional("sent_folder", text, None),
        drafts_folder=t.optional("drafts_folder", text, None),
    )


def _imap(t: Table, common: AccountConfig, ctx: _Context) -> AccountConfig:
    """An imap account: LOGIN with a password, or (auth = "oauth", Microsoft 365)
    AUTHENTICATE XOAUTH2 with a token of the graph-style app registration keys, for the
    mailbox `username`."""
    auth: ImapAuth = t.optional("auth", choice(_IMAP_AUTHS), "password")
    unused = ("password_env", "password_file") if auth == "oauth" else _OAUTH_KEYS
    for key in unused:
        if t.has(key):
            raise t.error(key, f'not used with auth = "{auth}"')
    host = t.required("host", text)
    security: Security = t.optional("security", choice(_SECURITIES), "tls")
    if security == "none":
        if not is_loopback(host):
            secret = "the token" if auth == "oauth" else "the password"
            message = (
                f'"none" sends {secret} in clear text, so it is only allowed to '
                f'localhost, 127.0.0.1 or ::1, not {host!r}; use "tls" or "starttls"'
            )
            raise t.error("security", message)
        if t.has("tls_ca_file"):
            raise t.error("tls_ca_file", 'not used with security = "none"')
    account = replace(
        common,
        host=host,
        port=t.optional("port", integer(1, 65535), 993 if security == "tls" else 143),
        security=security,
        auth=auth,
        username=t.optional("username", text, common.addresses[0]),
    )
    if auth == "oauth":
        account = _with_oauth(t, ctx, account)
    else:
        account = replace(account, password=_secret(t, "password", ctx))
    return _with_network(t, ctx, account)


def _graph(t: Table, common: AccountConfig, ctx: _Context) -> AccountConfig:
    account = replace(
        common,
        mailbox=t.optional("mailbox", text, common.addresses[0]),
        graph_url=t.optional("graph_url", https_url, DEFAULT_GRAPH_URL),
    )
    return _with_network(t, ctx, _with_oauth(t, ctx, account))


def _ews(t: Table, common: AccountConfig, ctx: _Context) -> AccountConfig:
    auth: EwsAuth = t.optional("auth", choice(_EWS_AUTHS), "ntlm")
    unused = _PASSWORD_KEYS if auth == "oauth" else _OAUTH_KEYS
    for key in unused:
        if t.has(key):
            raise t.error(key, f'not used with auth = "{auth}"')
    account = replace(
        common,
        mailbox=t.optional("mailbox", text, common.addresses[0]),
        ews_url=t.required("ews_url", http_url),
        auth=auth,
    )
    if auth == "oauth":
        account = _with_oauth(t, ctx, account)
    else:
        account = replace(
            account,
            username=t.optional("username", text, common.addresses[0]),
            password=_secret(t, "password", ctx),
        )
    return _with_network(t, ctx, account)


def _with_network(t: Table, ctx: _Context, account: AccountConfig) -> AccountConfig:
    return replace(
        account,
        tls_ca_file=t.optional("tls_ca_file", readable_file(ctx.base), None),
        timeout=t.optional("timeout", number(1, 3600), 30.0),
    )


def _with_oauth(t: Table, ctx: _Context, account: AccountConfig) -> AccountConfig:
    """The app registration keys of a graph account, or an imap or ews account with
    auth = "oauth"."""
    delegated = t.optional("delegated", boolean, False)
    given = [key for key in _CLIENT_KEYS if t.has(key)]
    if delegated and given:
        raise t.error(
            given[0], "not used with delegated = true (the rep signs in with relight auth)"
        )
    if not delegated and not given:
        raise t.error(None, "set client_secret_env, client_secret_file or client_certificate_file")
    if len(given) > 1:
        raise t.error(given[1], f"give only one of {' and '.join(given)}")
    certificate = None
    if given == ["client_certificate_file"]:
        to_path = readable_file(ctx.base) if ctx.resolve_secrets else file_path(ctx.base)
        certificate = t.required("client_certificate_file", to_path)
    return replace(
        account,
        tenant_id=t.required("tenant_id", text),
        client_id=t.required("client_id", text),
        client_secret=_secret(t, "client_secret", ctx) if given and not certificate else None,
        client_certificate_file=certificate,
        delegated=delegated,
        authority_url=t.optional("authority_url", https_url, DEFAULT_AUTHORITY_URL),
    )


def _secret(t: Table, stem: str, ctx: _Context) -> str | None:
    """The secret named by exactly one of `{stem}_env` and `{stem}_file`.

    None when secrets are not resolved. The value never appears in a message.
    """
    env_key, file_key = f"{stem}_env", f"{stem}_file"
    if t.has(env_key) and t.has(file_key):
        raise t.error(file_key, f"give only one of {env_key} and {file_key}")
    if t.has(env_key):
        variable = t.required(env_key, env_name)
        if not ctx.resolve_secrets:
            return None
        if variable not in ctx.environ:
            raise t.error(env_key, f"environment variable {variable} is not set")
        if not ctx.environ[variable]:
            raise t.error(env_key, f"environment variable {variable} is empty")
        return ctx.environ[variable]
    if not t.has(file_key):
        raise t.error(None, f"set {env_key} or {file_key}")
    path = t.required(file_key, file_path(ctx.base))
    if not ctx.resolve_secrets:
        return None
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise t.error(file_key, f"no such file: {path}") from None
    except PermissionError:
        raise t.error(file_key, f"not readable (permission denied): {path}") from None
    except UnicodeDecodeError:
        raise t.error(file_key, f"not UTF-8 text: {path}") from None
    except OSError as exc:
        raise t.error(file_key, f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise t.error(file_key, f"the file is empty: {path}")
    return value
