"""Reading a parsed TOML document into typed values, with errors that name the key.

`daemon.config` says *what* the configuration holds; this module says *how* one
value is read. A `Table` wraps one TOML table and knows its dotted key
(`accounts[0]`). It is told which keys it may hold and refuses any other, then
hands each value to a converter. Converters are plain functions `object -> T`
that raise `Invalid` with a short "expected ..." message; the table adds the file
and the key, so a converter never needs to know where its value came from.
Arrays add the item index (`internal_domains[2]`) on the way out.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

__all__ = [
    "ConfigError",
    "Convert",
    "Invalid",
    "Table",
    "address",
    "address_or_domain",
    "array",
    "boolean",
    "calendar_date",
    "choice",
    "database_url",
    "directory",
    "domain",
    "duration",
    "env_name",
    "file_path",
    "http_url",
    "identifier",
    "integer",
    "is_loopback",
    "matching",
    "number",
    "readable_file",
    "show",
    "string",
    "text",
    "timezone_name",
]

T = TypeVar("T")
D = TypeVar("D")
Convert = Callable[[object], T]


class ConfigError(Exception):
    """The configuration cannot be used; `str()` is one line naming the file and the key."""

    def __init__(self, message: str, *, key: str = "", path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.path = path

    def __str__(self) -> str:
        parts = (str(self.path) if self.path is not None else "", self.key, self.message)
        return ": ".join(part for part in parts if part)


class Invalid(ValueError):
    """A value failed a converter. `at` locates it inside the value, e.g. "[2]" in an array."""

    def __init__(self, message: str, at: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.at = at


def show(value: object) -> str:
    """A value as the admin wrote it in TOML, for "got ..." in messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, date):
        return value.isoformat()
    return repr(value)


class Table:
    """One TOML table being read, named by its dotted key ("" for the document)."""

    def __init__(self, data: Mapping[str, object], key: str, path: Path | None) -> None:
        self.data = data
        self.key = key
        self.path = path

    @classmethod
    def at(cls, value: object, key: str, path: Path | None) -> Table:
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a table, got {show(value)}", key=key, path=path)
        return cls(value, key, path)

    def name(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str | None, message: str) -> ConfigError:
        """An error about key `name` of this table, or about the table itself when None."""
        return ConfigError(
            message, key=self.key if name is None else self.name(name), path=self.path
        )

    def allow(self, known: Iterable[str], misplaced: Mapping[str, str] | None = None) -> None:
        """Refuse any key not in `known`; `misplaced` gives a better message for some keys."""
        known = tuple(known)
        for name in self.data:
            if name in known:
                continue
            if misplaced and name in misplaced:
                raise self.error(name, misplaced[name])
            close = difflib.get_close_matches(name, known, n=1)
            raise self.error(
                name, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
            )

    def has(self, name: str) -> bool:
        return name in self.data

    def required(self, name: str, convert: Convert[T]) -> T:
        if name not in self.data:
            raise self.error(name, "missing required key")
        return self._convert(name, convert)

    def optional(self, name: str, convert: Convert[T], default: D) -> T | D:
        if name not in self.data:
            return default
        return self._convert(name, convert)

    def table(self, name: str) -> Table:
        """The sub-table `name`; an empty one when the key is absent."""
        return Table.at(self.data.get(name, {}), self.name(name), self.path)

    def tables(self, name: str) -> list[Table]:
        """The array of tables `name` (`[[name]]`); empty when the key is absent."""
        value = self.data.get(name, [])
        if not isinstance(value, list | tuple):
            raise self.error(name, f"expected an array of tables, got {show(value)}")
        return [
            Table.at(item, f"{self.name(name)}[{i}]", self.path) for i, item in enumerate(value)
        ]

    def _convert(self, name: str, convert: Convert[T]) -> T:
        try:
            return convert(self.data[name])
        except Invalid as exc:
            raise self.error(name + exc.at, exc.message) from None


# -- converters ---------------------------------------------------------------


def string(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {show(value)}")
    return value


def text(value: object) -> str:
    """A non-empty string, surrounding blanks removed."""
    result = string(value).strip()
    if not result:
        raise Invalid("must not be empty")
    return result


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {show(value)}")
    return value


def integer(low: int, high: int | None = None) -> Convert[int]:
    expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"

    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected {expected}, got {show(value)}")
        if value < low or (high is not None and value > high):
            raise Invalid(f"expected {expected}, got {value}")
        return value

    return convert


def number(low: float, high: float) -> Convert[float]:
    def convert(value: object) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise Invalid(f"expected a number from {low:g} to {high:g}, got {show(value)}")
        return float(value)

    return convert


def choice(options: tuple[T, ...]) -> Convert[T]:
    def convert(value: object) -> T:
        for option in options:
            if value == option and isinstance(value, str):
                return option
        expected = ", ".join(f'"{option}"' for option in options)
        raise Invalid(f"expected one of {expected}, got {show(value)}")

    return convert


def array(item: Convert[T], *, min_items: int = 0) -> Convert[tuple[T, ...]]:
    def convert(value: object) -> tuple[T, ...]:
        if not isinstance(value, list | tuple):
            raise Invalid(f"expected an array, got {show(value)}")
        if len(value) < min_items:
            raise Invalid(f"needs at least {min_items} item{'s' if min_items > 1 else ''}")
        result = []
        for i, element in enumerate(value):
            try:
                result.append(item(element))
            except Invalid as exc:
                raise Invalid(exc.message, at=f"[{i}]{exc.at}") from None
        return tuple(result)

    return convert


def matching(pattern: str, expected: str) -> Convert[str]:
    compiled = re.compile(pattern)

    def convert(value: object) -> str:
        result = text(value)
        if not compiled.fullmatch(result):
            raise Invalid(f"expected {expected}, got {show(value)}")
        return result

    return convert


identifier = matching(r"[A-Za-z_][A-Za-z0-9_]*", "a name of letters, digits and '_'")
env_name = matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name")

_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"


def _lowered(pattern: str, expected: str) -> Convert[str]:
    compiled = re.compile(pattern)

    def convert(value: object) -> str:
        result = text(value).lower()
        if not compiled.fullmatch(result):
            raise Invalid(f"expected {expected}, got {show(value)}")
        return result

    return convert


address = _lowered(f"{_LOCAL}@{_DOMAIN}", "an email address like 'name@example.com'")
domain = _lowered(_DOMAIN, "a domain like 'example.com' (no '@')")
address_or_domain = _lowered(
    f"(?:{_LOCAL})?@{_DOMAIN}", "an address like 'name@example.com' or a domain like '@example.com'"
)

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def duration(minimum: timedelta) -> Convert[timedelta]:
    """A duration written "30s", "5m", "1h", "1h30m" and so on, at least `minimum`."""

    def convert(value: object) -> timedelta:
        match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match or not any(match.groups()):
            raise Invalid(f'expected a duration like "30s", "5m" or "1h30m", got {show(value)}')
        hours, minutes, seconds = (int(part or 0) for part in match.groups())
        result = timedelta(hours=hours, minutes=minutes, seconds=seconds)
        if result < minimum:
            raise Invalid(f"must be at least {int(minimum.total_seconds())}s, got {show(value)}")
        return result

    return convert


def calendar_date(value: object) -> date:
    """A TOML date (2026-12-01) or the same as a string; not a date-time."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    elif isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise Invalid(f"expected a date like 2026-12-01, got {show(value)}")


def timezone_name(value: object) -> str:
    name = text(value)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(
            f'unknown time zone {name!r}; use an IANA name like "Europe/Berlin"'
        ) from None
    return name


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: names whose traffic never leaves the machine."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_url(value: object) -> str:
    """An https URL (http only to a loopback host), without a trailing slash."""
    url = text(value)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Invalid(f"expected an https:// URL, got {show(value)}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise Invalid(f"plain http is only allowed to a loopback host; use https, got {url!r}")
    return url.rstrip("/")


def https_url(value: object) -> str:
    """An https URL, without a trailing slash (Microsoft's endpoints: msal and the Graph
    connector refuse anything else, even on loopback)."""
    url = text(value)
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise Invalid(f"expected an https:// URL, got {show(value)}")
    return url.rstrip("/")


def database_url(value: object) -> str:
    url = text(value)
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise Invalid(
            'expected a database URL like "sqlite:////var/lib/relight/relight.db" '
            f'or "postgresql+psycopg://relight@db.example/relight", got {show(value)}'
        )
    if urlsplit(url).password:
        # Said without echoing the URL: it holds the password.
        raise Invalid(
            "the URL holds a password, and secrets never go in this file; "
            "let PostgreSQL read it from PGPASSFILE or ~/.pgpass"
        )
    return url


def file_path(base: Path | None) -> Convert[Path]:
    """A path; relative ones are read from the config file's directory."""

    def convert(value: object) -> Path:
        path = Path(text(value)).expanduser()
        return path if path.is_absolute() or base is None else base / path

    return convert


def readable_file(base: Path | None) -> Convert[Path]:
    to_path = file_path(base)

    def convert(value: object) -> Path:
        path = to_path(value)
        if not path.exists():
            raise Invalid(f"no such file: {path}")
        if not path.is_file():
            raise Invalid(f"not a file: {path}")
        if not os.access(path, os.R_OK):
            raise Invalid(f"not readable (permission denied): {path}")
        return path

    return convert


def directory(base: Path | None) -> Convert[Path]:
    to_path = file_path(base)

    def convert(value: object) -> Path:
        path = to_path(value)
        if not path.exists():
            raise Invalid(f"no such directory: {path}")
        if not path.is_dir():
            raise Invalid(f"not a directory: {path}")
        if not os.access(path, os.R_OK | os.X_OK):
            raise Invalid(f"not readable (permission denied): {path}")
        return path

    return convert
