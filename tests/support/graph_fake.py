"""A local Microsoft Graph and Microsoft Entra ID on loopback, over TLS, for the tests.

No Microsoft server can be reached from here, so the Graph connector and msal are tested
against this fake. It speaks the wire formats of Microsoft's published request and response
examples, not whatever the connector happens to send:

* Entra ID (learn.microsoft.com/entra/identity-platform): the tenant's OpenID
  configuration (`/{tenant}/v2.0/.well-known/openid-configuration`), the token endpoint of
  the client credentials grant ("v2-oauth2-client-creds-grant-flow": a form POST with
  client_id, scope, client_secret or client_assertion, grant_type; the token answer; the
  400/401 error answer with error, error_description "AADSTSnnnn: ...", error_codes,
  timestamp, trace_id, correlation_id), certificate assertions ("certificate-credentials":
  PS256 with x5t#S256, or RS256 with x5t; aud the token endpoint), the device code flow
  ("v2-oauth2-device-code": /devicecode, authorization_pending while the rep signs in)
  and the refresh token grant.
* Graph v1.0 (learn.microsoft.com/graph): "message: delta" and "Get incremental changes
  to messages in a folder" (pages of `value` with @odata.nextLink ($skiptoken) and a last
  page with @odata.deltaLink ($deltatoken), `Prefer: odata.maxpagesize`, `@removed`
  entries with a reason), "Use delta query" (410 Gone with a Location header and the
  error code syncStateNotFound for a lost state), "throttling" (429 with Retry-After and
  the TooManyRequests error body), "message: createReply" (201 and the draft message in
  the same conversation, subject "RE: ..."), "Update message" (the updatable properties;
  others refused), "Create message" (internetMessageHeaders only with x- names),
  "Get singleValueLegacyExtendedProperty" ($expand with an id filter), list messages with
  `$filter=internetMessageId eq '...'`, `$select`, `$top`, GET `/$value` (MIME) and
  DELETE. `Prefer: IdType="ImmutableId"` selects the immutable ids (others get the
  default, mutable-looking ids), `outlook.body-content-type="text"` text bodies (with CRLF
  line ends, as Exchange keeps them).

A test drives it through a small API: `add_client`, `add_message`, `update_message`,
`remove_message`, `fail_next` (429/503/... with Retry-After), `expire_sync_state`,
`drafts()`, `message()`, and `requests` (what was asked, for assertions).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import ipaddress
import itertools
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["GraphFake", "Recorded", "make_certificate", "make_test_ca"]

WELL_KNOWN = ("inbox", "sentitems", "drafts", "deleteditems")
UPDATABLE = frozenset(
    {
        *("bccRecipients", "body", "categories", "ccRecipients", "flag", "from", "importance"),
        *("inferenceClassification", "internetMessageId", "isDeliveryReceiptRequested", "isRead"),
        *("isReadReceiptRequested", "multiValueExtendedProperties", "replyTo", "sender"),
        *("singleValueExtendedProperties", "subject", "toRecipients"),
    }
)
DRAFT_ONLY = frozenset({"body", "internetMessageId", "replyTo", "subject"})
_EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=id eq '((?:[^']|'')*)'\)$", re.I)
_FILTER_IMID = re.compile(r"^internetMessageId eq '((?:[^']|'')*)'$")
_FILTER_PROPERTY = re.compile(
    r"^singleValueExtendedProperties/Any\(ep: ep/id eq '((?:[^']|'')*)' "
    r"and ep/value eq '((?:[^']|'')*)'\)$",
    re.I,
)
_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|fw|fwd|wg)\s*:\s*)+", re.I)


# -- certificates ---------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_test_ca(directory: Path) -> tuple[Path, x509.Certificate, rsa.RSAPrivateKey]:
    """A CA certificate (written to ca.pem) and its key."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Relight test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = directory / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def make_certificate(
    common_name: str,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    *,
    server: bool = False,
) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM): a TLS server certificate for 127.0.0.1 and
    localhost signed by `issuer`, or a self-signed client certificate (an app's
    credential)."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _pem(key)


# -- the mailbox ----------------------------------------------------------------------------


@dataclass
class Message:
    """One item in the fake mailbox (a message resource, with what Graph keeps apart)."""

    number: int
    folder: str
    internet_message_id: str  # with angle brackets, as Graph gives it
    conversation_id: str
    subject: str
    sender: dict[str, Any] | None
    to: list[dict[str, Any]]
    cc: list[dict[str, Any]] = field(default_factory=list)
    reply_to: list[dict[str, Any]] = field(default_factory=list)
    sent: dt.datetime | None = None
    received: dt.datetime | None = None
    body_text: str = ""
    body_html: str | None = None
    unique_body_text: str | None = None
    headers: list[dict[str, str]] = field(default_factory=list)
    is_draft: bool = False
    is_read: bool = False
    extended: dict[str, str] = field(default_factory=dict)
    mime: bytes | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    version: int = 1

    @property
    def immutable_id(self) -> str:
        raw = b"\x00\x00\x00\x00imm" + self.number.to_bytes(8, "big")
        return "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A" + base64.urlsafe_b64encode(raw).decode()

    @property
    def rest_id(self) -> str:
        raw = b"\x00\x00\x00\x00rst" + self.number.to_bytes(8, "big")
        return "AAMkAGI2THVSAAA=" + base64.urlsafe_b64encode(raw).decode()


def recipient(address: str, name: str = "") -> dict[str, Any]:
    return {"emailAddress": {"name": name or address, "address": address}}


def _recipient_of(person: str | tuple[str, str]) -> dict[str, Any]:
    """An address, or a (display name, address) pair, as a Graph recipient."""
    if isinstance(person, str):
        return recipient(person)
    name, address = person
    return recipient(address, name)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass
class Recorded:
    """One request the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class _Client:
    secret: str | None
    certificate: x509.Certificate | None


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    match: str
    method: str | None
    times: int


class GraphError(Exception):
    """An error answer: status, Graph's error code and message."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class TokenError(Exception):
    """An error answer of the token endpoint (Entra's JSON shape)."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


class GraphFake:
    """Entra ID and Graph for one tenant and one mailbox; see the module docstring. A
    context manager: the server runs on a thread of its own."""

    def __init__(
        self,
        directory: Path,
        *,
        tenant_id: str = "00000000-0000-0000-0000-00000000aaaa",
        mailbox: str = "lee@acmesoft.example",
        owner_name: str = "Lee Park",
    ) -> None:
        self.directory = Path(directory)
        self.tenant_id = tenant_id
        self.mailbox = mailbox
        self.owner = recipient(mailbox, owner_name)
        self.user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, mailbox))
        self.ca_file, ca_cert, ca_key = make_test_ca(self.directory)
        cert_pem, key_pem = make_certificate("localhost", (ca_cert, ca_key), server=True)
        (self.directory / "server.pem").write_bytes(cert_pem + key_pem)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.directory / "server.pem")
        self.lock = threading.RLock()
        self.clients: dict[str, _Client] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (audience, expiry)
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> client id
        self.device_codes: dict[str, dict[str, Any]] = {}
        self.pending_polls = 1
        self.token_lifetime = 3599
        self.messages: dict[int, Message] = {}
        self.requests: list[Recorded] = []
        self.errors: list[str] = []  # the fake's own failures (answered with 500)
        self.slow = 0.0  # seconds each GET of one message takes
        self.in_flight = 0
        self.max_in_flight = 0
        self._numbers = itertools.count(1)
        self._seq = 0
        self._log: list[tuple[int, str, int]] = []  # (seq, folder, message number)
        self._delta_states: dict[str, tuple[str, int, str | None]] = {}
        self._rounds: dict[str, tuple[str, list[int], int, str | None]] = {}
        self._failures: list[_Failure] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.socket = self._context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> GraphFake:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def authority_url(self) -> str:
        return self.base_url

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    # -- the test's API --------------------------------------------------------------------

    def add_client(
        self, client_id: str, *, secret: str | None = None, certificate_pem: bytes | None = None
    ) -> None:
        certificate = x509.load_pem_x509_certificate(certificate_pem) if certificate_pem else None
        with self.lock:
            self.clients[client_id] = _Client(secret, certificate)

    def add_message(
        self,
        folder: str,
        *,
        sender: str,
        to: tuple[str | tuple[str, str], ...] = (),
        cc: tuple[str | tuple[str, str], ...] = (),
        subject: str = "Hello",
        body: str = "Hello there.",
        unique_body: str | None = None,
        internet_message_id: str | None = None,
        conversation_id: str | None = None,
        in_reply_to: str | None = None,
        references: tuple[str, ...] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        sent: dt.datetime | None = None,
        received: dt.datetime | None = None,
        mime: bytes | None = None,
        sender_name: str = "",
    ) -> str:
        """Deliver (or file) a message; its immutable id. A recipient is an address or a
        (display name, address) pair; `references` default to the parent's and
        `in_reply_to`, `received` to five seconds after `sent`. A message filed into
        Drafts is a draft (isDraft), as one saved by a mail client is."""
        with self.lock:
            number = next(self._numbers)
            moment = sent or dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC) + dt.timedelta(
                minutes=number
            )
            to_list = [_recipient_of(person) for person in to]
            cc_list = [_recipient_of(person) for person in cc]
            imid = internet_message_id or f"<m{number}.{secrets.token_hex(4)}@mail.example>"
            if not imid.startswith("<"):
                imid = f"<{imid}>"
            parent = self._by_imid(in_reply_to) if in_reply_to else None
            conversation = conversation_id or (
                parent.conversation_id if parent else _conversation_id(imid)
            )
            all_headers = [
                {"name": "Message-ID", "value": imid},
                {"name": "Subject", "value": subject},
                {"name": "From", "value": sender},
                {"name": "To", "value": ", ".join(r["emailAddress"]["address"] for r in to_list)},
                {"name": "Date", "value": format_datetime(moment)},
            ]
            if references is None:
                chain = [*(parent.references if parent else []), in_reply_to] if in_reply_to else []
            else:
                chain = list(references)
            if in_reply_to:
                all_headers.append({"name": "In-Reply-To", "value": in_reply_to})
            if chain:
                all_headers.append({"name": "References", "value": " ".join(chain)})
            all_headers += [{"name": name, "value": value} for name, value in headers]
            message = Message(
                number=number,
                folder=folder,
                internet_message_id=imid,
                conversation_id=conversation,
                subject=subject,
                sender=recipient(sender, sender_name),
                to=to_list,
                cc=cc_list,
                sent=moment,
                received=received or moment + dt.timedelta(seconds=5),
                body_text=body,
                unique_body_text=unique_body,
                headers=all_headers,
                is_draft=folder == "drafts",
                mime=mime,
                in_reply_to=in_reply_to,
                references=[ref for ref in chain if ref],
            )
            self.messages[number] = message
            self._touch(folder, number)
            return message.immutable_id

    def update_message(self, remote_id: str, **changes: Any) -> None:
        """Change a message as a mail client would (isRead=True, ...): it shows in delta."""
        with self.lock:
            message = self._find(remote_id)
            for name, value in changes.items():
                setattr(message, {"isRead": "is_read"}.get(name, name), value)
            message.version += 1
            self._touch(message.folder, message.number)

    def remove_message(self, remote_id: str) -> None:
        """Delete a message for good (it shows as @removed in delta)."""
        with self.lock:
            message = self._find(remote_id)
            del self.messages[message.number]
            self._touch(message.folder, message.number)

    def fail_next(
        self,
        status: int,
        *,
        retry_after: str | None = None,
        match: str = "/v1.0/",
        method: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` Graph requests whose path contains `match` (and whose
        method is `method`, if given) with `status`."""
        with self.lock:
            self._failures.append(_Failure(status, retry_after, match, method, times))

    def expire_sync_state(self) -> None:
        """Forget every delta and skip token (Exchange's token cache overflowed)."""
        with self.lock:
            self._delta_states.clear()
            self._rounds.clear()

    def drafts(self) -> list[Message]:
        with self.lock:
            return [m for m in self.messages.values() if m.folder == "drafts"]

    def message(self, remote_id: str) -> Message:
        with self.lock:
            return self._find(remote_id)

    def token_requests(self, grant_type: str = "client_credentials") -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if r.path.endswith("/oauth2/v2.0/token") and r.form.get("grant_type") == grant_type
            )

    def graph_requests(self, fragment: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith("/v1.0/") and fragment in r.path]

    # -- internals ---------------------------------------------------------------------------

    def _touch(self, folder: str, number: int) -> None:
        self._seq += 1
        self._log.append((self._seq, folder, number))

    def _find(self, remote_id: str) -> Message:
        for message in self.messages.values():
            if remote_id in (message.immutable_id, message.rest_id):
                return message
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )

    def _by_imid(self, imid: str) -> Message | None:
        wanted = imid if imid.startswith("<") else f"<{imid}>"
        return next((m for m in self.messages.values() if m.internet_message_id == wanted), None)

    def _new_draft(self, **fields: Any) -> Message:
        number = next(self._numbers)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        fields.setdefault(
            "internet_message_id", f"<DR{number}{secrets.token_hex(6)}@fake.outlook.com>"
        )
        fields.setdefault("conversation_id", _conversation_id(fields["internet_message_id"]))
        message = Message(
            number=number,
            folder="drafts",
            sender=self.owner,
            received=now,
            is_draft=True,
            is_read=True,
            **fields,
        )
        self.messages[number] = message
        self._touch("drafts", number)
        return message


def _conversation_id(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()[:24]
    return "AAQkAGI2TG93AAAQA" + base64.urlsafe_b64encode(digest).decode()


# -- rendering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prefs:
    immutable: bool
    text: bool
    page_size: int | None

    @classmethod
    def parse(cls, headers: list[str]) -> _Prefs:
        values: dict[str, str] = {}
        for header in headers:
            for part in re.findall(r'([\w.-]+)\s*=\s*("[^"]*"|[^,\s]+)', header):
                values[part[0].lower()] = part[1].strip('"')
        size = values.get("odata.maxpagesize")
        return cls(
            immutable=values.get("idtype", "").lower() == "immutableid",
            text=values.get("outlook.body-content-type", "").lower() == "text",
            page_size=int(size) if size and size.isdigit() else None,
        )

    def applied(self) -> str:
        applied = []
        if self.immutable:
            applied.append('IdType="ImmutableId"')
        if self.text:
            applied.append('outlook.body-content-type="text"')
        if self.page_size:
            applied.append(f"odata.maxpagesize={self.page_size}")
        return ", ".join(applied)


def _body(text: str, html_body: str | None, prefs: _Prefs) -> dict[str, str]:
    if prefs.text:
        return {"contentType": "text", "content": text.replace("\r\n", "\n").replace("\n", "\r\n")}
    content = html_body or (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
        "<body><div>" + html.escape(text).replace("\n", "<br>") + "</div></body></html>"
    )
    return {"contentType": "html", "content": content}


def _resource(
    fake: GraphFake,
    message: Message,
    prefs: _Prefs,
    select: set[str] | None,
    expand: str | None,
    *,
    delta: bool = False,
) -> dict[str, Any]:
    """The message resource as Graph renders it."""
    ident = message.immutable_id if prefs.immutable else message.rest_id
    full: dict[str, Any] = {
        "@odata.etag": f'W/"CQAAABYAAAARn2vdzPFjSbaPPxzjlzOT{message.version:06d}"',
        "id": ident,
        "createdDateTime": _iso(message.received),
        "lastModifiedDateTime": _iso(message.received),
        "changeKey": f"CQAAABYAAAARn2vdzPFjSbaPPxzjlzOT{message.version:06d}",
        "categories": [],
        "receivedDateTime": _iso(message.received),
        "sentDateTime": _iso(message.sent),
        "hasAttachments": False,
        "internetMessageId": message.internet_message_id,
        "subject": message.subject,
        "bodyPreview": " ".join(message.body_text.split())[:255],
        "importance": "normal",
        "parentFolderId": "AQMkADYAAAIBDAAAAA-" + message.folder,
        "conversationId": message.conversation_id,
        "isDeliveryReceiptRequested": None,
        "isReadReceiptRequested": False,
        "isRead": message.is_read,
        "isDraft": message.is_draft,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={ident}&exvsurl=1&viewmodel=ReadMessageItem",
        "inferenceClassification": "focused",
        "body": _body(message.body_text, message.body_html, prefs),
        "sender": message.sender,
        "from": message.sender,
        "toRecipients": message.to,
        "ccRecipients": message.cc,
        "bccRecipients": [],
        "replyTo": message.reply_to,
        "flag": {"flagStatus": "notFlagged"},
    }
    if select is not None:
        rendered = {k: v for k, v in full.items() if k in select or k in ("id", "@odata.etag")}
        if "internetMessageHeaders" in select and not message.is_draft:
            rendered["internetMessageHeaders"] = message.headers
        if "uniqueBody" in select:
            unique = message.unique_body_text
            rendered["uniqueBody"] = _body(
                unique if unique is not None else message.body_text, None, prefs
            )
    else:
        rendered = full
    if delta:
        rendered = {"@odata.type": "#microsoft.graph.message", **rendered}
    if expand is not None:
        props = [
            {"id": key, "value": value}
            for key, value in message.extended.items()
            if key.lower() == expand.lower()
        ]
        if props:  # Graph leaves the collection out when nothing matched
            rendered["singleValueExtendedProperties"] = props
    return rendered


def _mime(fake: GraphFake, message: Message) -> bytes:
    if message.mime is not None:
        return message.mime
    lines = [f"{h['name']}: {h['value']}" for h in message.headers]
    if message.is_draft:
        lines = [f"Message-ID: {message.internet_message_id}", f"Subject: {message.subject}"]
        if message.in_reply_to:
            lines.append(f"In-Reply-To: {message.in_reply_to}")
            lines.append(f"References: {' '.join(message.references)}")
        lines += [
            f"{name}: {value}" for name, value in message.extended.items() if " Name " in name
        ]
    lines += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"', ""]
    return ("\r\n".join(lines) + "\r\n" + message.body_text).encode()


# -- the HTTP side --------------------------------------------------------------------------


def _handler(fake: GraphFake) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.fake = fake
    return Handler


class _Handler(BaseHTTPRequestHandler):
    fake: GraphFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `fake.requests`."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form: dict[str, str] = {}
        if "form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        fake = self.fake
        with fake.lock:
            fake.requests.append(
                Recorded(method, path, query, {k.lower(): v for k, v in self.headers.items()}, form)
            )
        try:
            if path.startswith("/v1.0/"):
                self._graph(method, path, query, raw)
            else:
                self._entra(method, path, form)
        except GraphError as error:
            body: dict[str, Any] = {
                "error": {
                    "code": error.code,
                    "message": error.message,
                    "innerError": {
                        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                        "request-id": str(uuid.uuid4()),
                        "client-request-id": str(uuid.uuid4()),
                    },
                }
            }
            self._send(error.status, body, error.headers)
        except TokenError as error:
            now = dt.datetime.now(dt.UTC)
            trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
            stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
            description = (
                f"AADSTS{error.code}: {error.description}\r\nTrace ID: {trace}\r\n"
                f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
            )
            answer: dict[str, Any] = {
                "error": error.error,
                "error_description": description,
                "error_codes": [error.code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{fake.base_url}/error?code={error.code}",
            }
            self._send(error.status, answer)
        except Exception as exc:  # a bug in the fake: visible to the test, answered as 500
            with fake.lock:
                fake.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            self._send(500, {"error": {"code": "InternalServerError", "message": "fake failed"}})

    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        if isinstance(body, bytes):
            data = body
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode()
            content_type = (
                "application/json; odata.metadata=minimal; odata.streaming=true; "
                "IEEE754Compatible=false; charset=utf-8"
            )
        self.send_response(status)
        if data or status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    # -- Entra ID --------------------------------------------------------------------------

    def _entra(self, method: str, path: str, form: dict[str, str]) -> None:
        fake = self.fake
        match = re.fullmatch(
            r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token|oauth2/v2\.0/devicecode)",
            path,
        )
        if match is None:
            raise GraphError(404, "NotFound", "no such endpoint")
        tenant, endpoint = match.groups()
        if tenant not in (fake.tenant_id, "organizations", "common"):
            raise TokenError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        root = f"{fake.base_url}/{tenant}"
        if endpoint.endswith("openid-configuration") and method == "GET":
            self._send(200, _openid_configuration(fake, root))
        elif endpoint.endswith("devicecode") and method == "POST":
            self._send(200, _device_code(fake, form))
        elif endpoint.endswith("token") and method == "POST":
            self._send(
                200,
                _token(fake, form, self.headers.get("Authorization"), f"{root}/oauth2/v2.0/token"),
            )
        else:
            raise GraphError(405, "MethodNotAllowed", "method not allowed")

    # -- Graph -----------------------------------------------------------------------------

    def _graph(self, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
        fake = self.fake
        self._authorize()
        with fake.lock:
            for failure in fake._failures:
                wanted = failure.method in (None, method)
                if failure.match in path and wanted and failure.times > 0:
                    failure.times -= 1
                    fake._failures = [f for f in fake._failures if f.times > 0]
                    self._fail(failure)
                    return
        match = re.fullmatch(r"/v1\.0/users/([^/]+)(/.*)?", path)
        if match is None:
            raise GraphError(400, "BadRequest", "Resource not found for the segment.")
        user, rest = match.group(1), match.group(2) or ""
        rest = re.sub(r"/mailFolders\('([^']*)'\)", r"/mailFolders/\1", rest, flags=re.I)
        if user.lower() not in (fake.mailbox.lower(), fake.user_id):
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        prefs = _Prefs.parse(self.headers.get_all("Prefer") or [])
        body = json.loads(raw) if raw.strip() else None
        with fake.lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            if fake.slow and re.fullmatch(r"/messages/[^/]+", rest):
                time.sleep(fake.slow)  # a slow store: concurrent requests overlap
            with fake.lock:
                status, answer, headers = _route(fake, method, rest, query, body, prefs)
        finally:
            with fake.lock:
                fake.in_flight -= 1
        if prefs.applied() and status < 300:
            headers = {"Preference-Applied": prefs.applied(), **headers}
        if isinstance(answer, bytes):
            self._send(status, answer, headers, content_type="text/plain")
        else:
            self._send(status, answer, headers)

    def _authorize(self) -> None:
        value = self.headers.get("Authorization") or ""
        token = value.removeprefix("Bearer ").strip() if value.startswith("Bearer ") else ""
        fake = self.fake
        with fake.lock:
            granted = fake.tokens.get(token)
        if not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        if granted is None or granted[1] < dt.datetime.now(dt.UTC).timestamp():
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )

    def _fail(self, failure: _Failure) -> None:
        headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
        if failure.status == 429:
            body = {
                "error": {
                    "code": "TooManyRequests",
                    "innerError": {
                        "code": "429",
                        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                        "message": "Please retry after",
                        "request-id": str(uuid.uuid4()),
                        "status": "429",
                    },
                    "message": "Please retry again later.",
                }
            }
        elif failure.status == 410:
            body = {
                "error": {
                    "code": "syncStateNotFound",
                    "message": "The sync state generation is not found.",
                }
            }
        else:
            body = {"error": {"code": "ServiceUnavailable", "message": "Service Unavailable"}}
        self._send(failure.status, body, headers)


def _openid_configuration(fake: GraphFake, root: str) -> dict[str, Any]:
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{fake.base_url}/{fake.tenant_id}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{fake.graph_url}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "name", "preferred_username"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": urlsplit(fake.base_url).netloc,
    }


def _device_code(fake: GraphFake, form: dict[str, str]) -> dict[str, Any]:
    client_id = form.get("client_id", "")
    if client_id not in fake.clients:
        raise TokenError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory.",
        )
    device_code = secrets.token_urlsafe(24)
    user_code = secrets.token_hex(4).upper()
    fake.device_codes[device_code] = {
        "client_id": client_id,
        "scope": form.get("scope", ""),
        "polls": 0,
    }
    verification = f"{fake.base_url}/devicelogin"
    return {
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification,
        "expires_in": 900,
        "interval": 1,
        "message": (
            f"To sign in, use a web browser to open the page {verification} and enter the "
            f"code {user_code} to authenticate."
        ),
    }


def _token(
    fake: GraphFake, form: dict[str, str], authorization: str | None, endpoint: str
) -> dict[str, Any]:
    grant = form.get("grant_type", "")
    with fake.lock:
        if grant == "client_credentials":
            client_id = _authenticate_client(fake, form, authorization, endpoint)
            scope = form.get("scope", "")
            if scope != f"{fake.base_url}/.default":
                raise TokenError(
                    400,
                    "invalid_scope",
                    70011,
                    f"The provided value for the input parameter 'scope' is not valid. The "
                    f"scope {scope} is not valid.",
                )
            return _issue(fake, client_id, None)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            flow = fake.device_codes.get(form.get("device_code", ""))
            if flow is None:
                raise TokenError(400, "bad_verification_code", 70019, "Verification code expired.")
            flow["polls"] += 1
            if flow["polls"] <= fake.pending_polls:
                raise TokenError(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            del fake.device_codes[form["device_code"]]
            return _issue(fake, flow["client_id"], form.get("client_info"), user=True)
        if grant == "refresh_token":
            client_id = fake.refresh_tokens.get(form.get("refresh_token", ""), "")
            if client_id != form.get("client_id"):
                raise TokenError(
                    400,
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity.",
                )
            return _issue(fake, client_id, form.get("client_info"), user=True)
    raise TokenError(
        400,
        "unsupported_grant_type",
        70003,
        f"The app requested an unsupported grant type '{grant}'.",
    )


def _authenticate_client(
    fake: GraphFake, form: dict[str, str], authorization: str | None, endpoint: str
) -> str:
    client_id = form.get("client_id", "")
    secret = form.get("client_secret")
    if authorization and authorization.startswith("Basic "):
        decoded = base64.b64decode(authorization[6:]).decode()
        basic_id, _, basic_secret = decoded.partition(":")
        client_id, secret = (
            unquote(basic_id.replace("+", " ")),
            unquote(basic_secret.replace("+", " ")),
        )
    client = fake.clients.get(client_id)
    if client is None:
        raise TokenError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{fake.tenant_id}'. This can happen if the application has not been installed by "
            "the administrator of the tenant or consented to by any user in the tenant.",
        )
    assertion = form.get("client_assertion")
    if assertion is not None:
        _check_assertion(client, client_id, assertion, endpoint, form)
        return client_id
    if client.secret is None or secret != client.secret:
        raise TokenError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            f"client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id}'.",
        )
    return client_id


def _check_assertion(
    client: _Client, client_id: str, assertion: str, endpoint: str, form: dict[str, str]
) -> None:
    def refuse(description: str) -> TokenError:
        return TokenError(401, "invalid_client", 700027, description)

    if (
        form.get("client_assertion_type")
        != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ):
        raise TokenError(400, "invalid_request", 900144, "client_assertion_type is missing.")
    if client.certificate is None:
        raise refuse("Client assertion contains an invalid signature.")
    der = client.certificate.public_bytes(serialization.Encoding.DER)
    header = jwt.get_unverified_header(assertion)
    sha256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    sha1 = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324
    # msal keeps the base64 padding RFC 7515 leaves out; Entra takes either.
    given_sha256 = str(header.get("x5t#S256", "")).rstrip("=")
    given_sha1 = str(header.get("x5t", "")).rstrip("=")
    if given_sha256 != sha256 and given_sha1 != sha1:
        raise refuse(
            "The certificate with identifier used to sign the client assertion is not "
            "registered on application."
        )
    try:
        claims = jwt.decode(
            assertion,
            client.certificate.public_key(),  # type: ignore[arg-type]
            algorithms=["PS256", "RS256"],
            audience=endpoint,
        )
    except jwt.PyJWTError as exc:
        raise refuse(f"Client assertion contains an invalid signature. [{exc}]") from exc
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise refuse("Client assertion issuer and subject must be the client id.")


def _issue(
    fake: GraphFake, client_id: str, client_info: str | None, *, user: bool = False
) -> dict[str, Any]:
    token = "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + secrets.token_urlsafe(32)
    expiry = dt.datetime.now(dt.UTC).timestamp() + fake.token_lifetime
    fake.tokens[token] = (fake.base_url, expiry)
    answer: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": fake.token_lifetime,
        "ext_expires_in": fake.token_lifetime,
        "access_token": token,
    }
    if user:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        claims = {
            "aud": client_id,
            "iss": f"{fake.base_url}/{fake.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": fake.owner["emailAddress"]["name"],
            "oid": fake.user_id,
            "preferred_username": fake.mailbox,
            "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "tid": fake.tenant_id,
            "ver": "2.0",
        }
        refresh = "0.AAAA" + secrets.token_urlsafe(40)
        fake.refresh_tokens[refresh] = client_id
        answer |= {
            "scope": f"{fake.base_url}/Mail.ReadWrite",
            "refresh_token": refresh,
            "id_token": jwt.encode(
                claims, "fake-id-token-key-of-32-bytes-at-least", algorithm="HS256"
            ),
        }
        if client_info == "1":
            info = json.dumps({"uid": fake.user_id, "utid": fake.tenant_id}).encode()
            answer["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode()
    return answer


# -- Graph routes --------------------------------------------------------------------------


def _route(  # noqa: PLR0911, PLR0912, PLR0917 - one table of routes
    fake: GraphFake,
    method: str,
    rest: str,
    query: dict[str, str],
    body: Any,
    prefs: _Prefs,
) -> tuple[int, Any, dict[str, str]]:
    select = set(query["$select"].split(",")) if "$select" in query else None
    expand = _expand(query.get("$expand"))
    if match := re.fullmatch(r"/mailFolders/([^/]+)/messages/delta", rest):
        if method != "GET":
            raise GraphError(405, "BadRequest", "method not allowed")
        return 200, _delta(fake, _folder(match.group(1)), query, prefs), {}
    if match := re.fullmatch(r"/mailFolders/([^/]+)/messages", rest):
        folder = _folder(match.group(1))
        if method == "GET":
            items = _filtered([m for m in fake.messages.values() if m.folder == folder], query)
            base = f"{fake.graph_url}/users/{fake.mailbox}{rest}"
            return 200, _listing(fake, items, query, prefs, select, expand, base), {}
        if method == "POST":
            return 201, _resource(fake, _create(fake, body or {}, folder), prefs, None, None), {}
    if match := re.fullmatch(r"/mailFolders/([^/]+)", rest):
        folder = _folder(match.group(1))
        count = sum(1 for m in fake.messages.values() if m.folder == folder)
        return (
            200,
            {"id": "AQMkADYAAAIBDAAAAA-" + folder, "displayName": folder, "totalItemCount": count},
            {},
        )
    if rest == "/messages":
        if method == "POST":
            return 201, _resource(fake, _create(fake, body or {}, "drafts"), prefs, None, None), {}
        items = _filtered(list(fake.messages.values()), query)
        base = f"{fake.graph_url}/users/{fake.mailbox}/messages"
        return 200, _listing(fake, items, query, prefs, select, expand, base), {}
    if match := re.fullmatch(r"/messages/([^/]+)/createReply", rest):
        if method != "POST":
            raise GraphError(405, "BadRequest", "method not allowed")
        return (
            201,
            _resource(
                fake, _create_reply(fake, fake._find(match.group(1)), body), prefs, None, None
            ),
            {},
        )
    if match := re.fullmatch(r"/messages/([^/]+)/\$value", rest):
        return 200, _mime(fake, fake._find(match.group(1))), {}
    if match := re.fullmatch(r"/messages/([^/]+)", rest):
        message = fake._find(match.group(1))
        if method == "GET":
            return 200, _resource(fake, message, prefs, select, expand), {}
        if method == "PATCH":
            _patch(fake, message, body or {})
            return 200, _resource(fake, message, prefs, None, None), {}
        if method == "DELETE":
            del fake.messages[message.number]
            fake._touch(message.folder, message.number)
            message.folder = "deleteditems"
            fake.messages[message.number] = message
            fake._touch("deleteditems", message.number)
            return 204, None, {}
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest}'.")


def _filtered(items: list[Message], query: dict[str, str]) -> list[Message]:
    """The messages matching $filter: internetMessageId eq '...', or a string extended
    property's value ("Get singleValueLegacyExtendedProperty", request 2)."""
    text = query.get("$filter")
    if text is None:
        return items
    if match := _FILTER_IMID.fullmatch(text):
        wanted = match.group(1).replace("''", "'")
        return [m for m in items if m.internet_message_id == wanted]
    if match := _FILTER_PROPERTY.fullmatch(text):
        prop, value = (group.replace("''", "'") for group in match.groups())
        return [  # the id's name part is case-sensitive, the value not
            m
            for m in items
            if any(
                key == prop and str(found).lower() == value.lower()
                for key, found in m.extended.items()
            )
        ]
    raise GraphError(
        400,
        "ErrorInvalidUrlQueryFilter",
        "The query filter contains one or more invalid nodes.",
    )


def _folder(name: str) -> str:
    if name.lower() not in WELL_KNOWN:
        raise GraphError(404, "ErrorInvalidIdMalformed", "Id is malformed.")
    return name.lower()


def _expand(value: str | None) -> str | None:
    if value is None:
        return None
    match = _EXPAND.fullmatch(value)
    if match is None:
        raise GraphError(400, "BadRequest", f"Parsing OData Select and Expand failed: {value}")
    return match.group(1).replace("''", "'")


def _listing(  # noqa: PLR0917
    fake: GraphFake,
    items: list[Message],
    query: dict[str, str],
    prefs: _Prefs,
    select: set[str] | None,
    expand: str | None,
    base: str,
) -> dict[str, Any]:
    top = int(query.get("$top", "10"))
    if not 1 <= top <= 1000:
        raise GraphError(400, "ErrorInvalidUrlQuery", "$top must be between 1 and 1000.")
    skip = int(query.get("$skip", "0"))
    items = sorted(
        items, key=lambda m: m.received or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True
    )
    page = items[skip : skip + top]
    answer: dict[str, Any] = {
        "@odata.context": f"{fake.graph_url}/$metadata#users('{fake.mailbox}')/messages",
        "value": [_resource(fake, m, prefs, select, expand) for m in page],
    }
    if skip + top < len(items):
        rest = {k: v for k, v in query.items() if k != "$skip"}
        answer["@odata.nextLink"] = f"{base}?{urlencode({**rest, '$skip': str(skip + top)})}"
    return answer


def _delta(fake: GraphFake, folder: str, query: dict[str, str], prefs: _Prefs) -> dict[str, Any]:
    base = f"{fake.graph_url}/users/{fake.mailbox}/mailFolders('{folder}')/messages/delta"
    lost = GraphError(
        410,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired or invalid.",
        Location=f"{fake.graph_url}/users/{fake.mailbox}/mailFolders/{folder}/messages/delta?$deltatoken=",
    )
    if "$skiptoken" in query:
        state = fake._rounds.get(query["$skiptoken"])
        if state is None or state[0] != folder:
            raise lost
        _folder_name, numbers, end_seq, select = state
    elif "$deltatoken" in query:
        known = fake._delta_states.get(query["$deltatoken"])
        if known is None or known[0] != folder:
            raise lost
        _folder_name, since, select = known
        touched = [number for seq, name, number in fake._log if seq > since and name == folder]
        numbers = list(dict.fromkeys(reversed(touched)))[::-1]
        end_seq = fake._seq
    else:
        select = query.get("$select")
        if select and "internetMessageHeaders" in select.split(","):
            raise GraphError(
                400,
                "ErrorInvalidProperty",
                "The property 'InternetMessageHeaders' is not supported in a delta query.",
            )
        numbers = [m.number for m in fake.messages.values() if m.folder == folder]
        end_seq = fake._seq
    size = prefs.page_size or 10
    page, remaining = numbers[:size], numbers[size:]
    selected = set(select.split(",")) if select else None
    value = []
    for number in page:
        message = fake.messages.get(number)
        if message is None or message.folder != folder:
            gone = Message(number, folder, "", "", "", None, [])
            ident = gone.immutable_id if prefs.immutable else gone.rest_id
            value.append(
                {
                    "@odata.type": "#microsoft.graph.message",
                    "id": ident,
                    "@removed": {"reason": "deleted"},
                }
            )
        else:
            value.append(_resource(fake, message, prefs, selected, None, delta=True))
    answer: dict[str, Any] = {"@odata.context": f"{fake.graph_url}/$metadata#Collection(message)"}
    if remaining:
        token = secrets.token_urlsafe(18)
        fake._rounds[token] = (folder, remaining, end_seq, select)
        answer["@odata.nextLink"] = f"{base}?$skiptoken={token}"
    else:
        token = secrets.token_urlsafe(18)
        fake._delta_states[token] = (folder, end_seq, select)
        answer["@odata.deltaLink"] = f"{base}?$deltatoken={token}"
    answer["value"] = value
    return answer


def _set_common(fake: GraphFake, message: Message, body: dict[str, Any]) -> None:
    if "body" in body:
        content = str(body["body"].get("content", ""))
        if str(body["body"].get("contentType", "")).lower() == "html":
            message.body_html = content
            message.body_text = html.unescape(re.sub(r"<[^>]+>", "", content))
        else:
            message.body_html, message.body_text = None, content
    if "toRecipients" in body:
        message.to = body["toRecipients"]
    if "ccRecipients" in body:
        message.cc = body["ccRecipients"]
    if "subject" in body:
        message.subject = body["subject"]
    if "internetMessageId" in body:
        message.internet_message_id = body["internetMessageId"]
    if "isRead" in body:
        message.is_read = bool(body["isRead"])
    for prop in body.get("singleValueExtendedProperties") or ():
        existing = next(
            (k for k in message.extended if k.lower() == prop["id"].lower()), prop["id"]
        )
        message.extended[existing] = str(prop["value"])


def _patch(fake: GraphFake, message: Message, body: dict[str, Any]) -> None:
    for name in body:
        if name not in UPDATABLE:
            raise GraphError(
                400,
                "ErrorInvalidProperty",
                f"The property '{name}' is read-only and cannot be set.",
            )
        if name in DRAFT_ONLY and not message.is_draft:
            raise GraphError(
                400,
                "ErrorInvalidPropertyUpdateSentMessage",
                "Update operation is invalid for property of a sent message.",
            )
    _set_common(fake, message, body)
    message.version += 1
    fake._touch(message.folder, message.number)


def _create(fake: GraphFake, body: dict[str, Any], folder: str) -> Message:
    for header in body.get("internetMessageHeaders") or ():
        if not str(header.get("name", "")).lower().startswith("x-"):
            raise GraphError(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{header.get('name')}' should start with "
                "'x-' or 'X-'.",
            )
    message = fake._new_draft(subject=str(body.get("subject", "")), to=[])
    message.folder = folder
    _set_common(fake, message, body)
    for prop_id, value in message.extended.items():
        if prop_id == "String 0x1042":
            message.in_reply_to = value
        elif prop_id == "String 0x1039":
            message.references = value.split()
    return message


def _create_reply(fake: GraphFake, original: Message, body: Any) -> Message:
    comment = (body or {}).get("comment")
    inner = (body or {}).get("message") or {}
    if comment is not None and "body" in inner:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "Specify either a comment or the body property of the message parameter.",
        )
    to = original.reply_to or ([original.sender] if original.sender else [])
    if original.folder == "sentitems":
        to = original.to
    author = original.sender["emailAddress"]["name"] if original.sender else ""
    sent = format_datetime(original.sent) if original.sent else ""
    recipients = "; ".join(r["emailAddress"]["name"] for r in original.to)
    quoted = (  # Outlook's reply header above the quoted original
        f"\n\n________________________________\nFrom: {author}\nSent: {sent}\n"
        f"To: {recipients}\nSubject: {original.subject}\n\n{original.body_text}"
    )
    message = fake._new_draft(
        subject="RE: " + _PREFIX.sub("", original.subject),
        to=list(to),
        conversation_id=original.conversation_id,
        body_text=(comment or "") + quoted,
        in_reply_to=original.internet_message_id,
        references=[*original.references, original.internet_message_id],
    )
    if inner:
        _patch(fake, message, inner)
    return message
