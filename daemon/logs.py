"""Logging set-up: structlog, configured once at start-up.

Log lines go to standard error, so that `relight report --format json` can be piped
while the service still logs: JSON lines when standard error is not a terminal (journald,
files), a readable console format when it is, unless the config asks for one of them.
Keys that could carry a secret are dropped before rendering, whatever the caller bound.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger"]

_SECRET_WORDS = ("password", "secret", "token", "authorization", "credential")


def _drop_secrets(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in [k for k in event if any(word in k.lower() for word in _SECRET_WORDS)]:
        event[key] = "[redacted]"
    return event


def configure_logging(
    log_format: str | None = None, *, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """`log_format` is "json", "console" or None (console on a terminal, else JSON)."""
    stream = stream or sys.stderr
    if log_format is None:
        log_format = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    return structlog.get_logger("relight").bind(**context)
