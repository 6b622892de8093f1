"""A local Exchange Web Services endpoint on loopback, for the EWS connector's tests.

No Exchange server can be reached from here, so the tests run the real connector (and the
real exchangelib) against this fake. It answers in the SOAP shapes of Microsoft's EWS
reference ("SyncFolderItems operation", "Synchronize items by using EWS", "GetFolder
operation", "GetItem operation (email message)", "CreateItem operation (email message)",
"Respond to email messages by using EWS" for ReplyToItem, "UpdateItem operation",
"DeleteItem operation", "FindItem operation", "ConvertId operation", "Provision x-headers
by using EWS" for ExtendedFieldURI in the InternetHeaders set, and "EWS throttling in
Exchange" for ErrorServerBusy with BackOffMilliseconds, whose fault shape is the one
exchangelib's own test fixture records), not from what the connector happens to send:

* **State.** One mailbox with the distinguished folders root, msgfolderroot, inbox,
  sentitems and drafts. Every change to a folder is appended to its log; a SyncState is
  an opaque token naming a position in that log. `SyncFolderItems` returns the net
  change of each item since that position (Create, Update, ReadFlagChange, Delete; an
  item created and deleted in between is not mentioned), at most `MaxChangesReturned`,
  with `IncludesLastItemInRange` false while more are left. A SyncState it did not issue
  is `ErrorInvalidSyncStateData`.
* **Shapes.** `ItemShape` is honoured: IdOnly gives the ItemId alone, AdditionalProperties
  add the named FieldURIs and ExtendedFieldURIs, IncludeMimeContent the MIME. FindItem
  knows the restrictions IsEqualTo, Exists, And, Or and Not, and IndexedPageItemView.
* **Replies.** `CreateItem` with a `ReplyToItem` builds the reply as Exchange does: the
  new body above an Outlook-style header block and the original text, In-Reply-To and
  References from the original, the original's ConversationId, a fresh InternetMessageId.
* **Authentication.** HTTP Basic against `users`, or NTLM (`auth="ntlm"`, users named
  `DOMAIN\\user`, checked by pyspnego's NTLM acceptor; the connection is authenticated,
  as IIS does). A `Bearer` token the fake's own OAuth authority handed out (`oauth_token`:
  client credentials, the client id and secret from `users`) must come with an
  `ExchangeImpersonation` header for every operation that touches the mailbox (all but
  ConvertId, which names none). Anything else is HTTP 401.
* **Failures on demand.** `throttle(back_off_ms, times)` answers the next requests with
  HTTP 500 and the ErrorServerBusy SOAP fault carrying `BackOffMilliseconds`;
  `fail_next(operation, code)` answers one request of that operation with a fault.

HTTPS with a private CA (`ca_file`), as the Dovecot harness does for IMAP.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import ipaddress
import itertools
import json
import os
import secrets
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import spnego
import spnego.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from defusedxml import ElementTree

__all__ = ["EwsFake", "FakeItem", "make_ca"]

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
FOLDERS = ("root", "msgfolderroot", "inbox", "sentitems", "drafts")
_IPF_NOTE = {"inbox": "Inbox", "sentitems": "Sent Items", "drafts": "Drafts"}
# What an Exchange 2016 CU reports; "V2017_07_11" is one of the version strings exchangelib
# knows to be unusable in a request.
_SERVER_VERSION = (
    f'<h:ServerVersionInfo xmlns:h="{T}" MajorVersion="15" MinorVersion="1" '
    'MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/>'
)


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _x(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeItem:
    """One item as the fake mailbox holds it. Message-ids keep their angle brackets, as
    EWS returns InternetMessageId, InReplyTo and References."""

    item_id: str
    folder: str
    subject: str = ""
    item_class: str = "IPM.Note"
    sender: tuple[str, str] | None = None  # (name, address)
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    conversation_id: str = ""
    sent: dt.datetime | None = None
    received: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0)
    )
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    body_type: str = "Text"
    mime: bytes | None = None
    extended: dict[tuple[str, str], str] = field(default_factory=dict)  # (set, name) -> value
    is_draft: bool = False
    change: int = 1

    @property
    def change_key(self) -> str:
        return base64.b64encode(f"CQAAABYA{self.change:08d}".encode()).decode()

    @property
    def text(self) -> str:
        if self.body_type == "Text":
            return self.body
        return html.unescape(self.body.replace("<br>", "\n").replace("</p>", "\n\n"))


@dataclass
class _Folder:
    name: str
    folder_id: str
    items: dict[str, FakeItem] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)  # (change, item id)


@dataclass
class _Shape:
    base: str = "IdOnly"
    fields: frozenset[str] = frozenset()
    extended: tuple[tuple[str, str, str], ...] = ()  # (set, name, type)
    mime: bool = False

    def wants(self, uri: str, *, default: bool = False) -> bool:
        return (
            uri in self.fields
            or self.base == "AllProperties"
            or (default and self.base == "Default")
        )


class _Fault(Exception):
    """An error answered as a SOAP fault (HTTP 500), as ErrorServerBusy is."""

    def __init__(self, code: str, text: str, message_xml: str = "") -> None:
        super().__init__(text)
        self.code, self.text, self.message_xml = code, text, message_xml


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for localhost/127.0.0.1 it signed: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Relight test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ews-ca.pem", directory / "ews-cert.pem", directory / "ews-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class EwsFake:
    """The fake server; see the module docstring. A context manager (`start` ... `stop`)."""

    def __init__(
        self, directory: Path, *, mailbox: str, users: dict[str, str], auth: str = "basic"
    ) -> None:
        self.mailbox = mailbox.lower()
        self.users = dict(users)
        self.auth = auth  # "basic", or "ntlm" (users then named DOMAIN\\user)
        self._ntlm_file: Path | None = None
        if auth == "ntlm":
            # pyspnego's NTLM acceptor reads its users from the file NTLM_USER_FILE names.
            self._ntlm_file = directory / "ntlm-users"
            self._ntlm_file.write_text(
                "".join(f"{user.replace(chr(92), ':', 1)}:{pw}\n" for user, pw in users.items())
            )
            self._old_ntlm_file = os.environ.get("NTLM_USER_FILE")
            os.environ["NTLM_USER_FILE"] = str(self._ntlm_file)
        self.tokens: set[str] = set()
        self.operations: list[str] = []  # SOAP operation names, in the order received
        self.deletes: list[tuple[str, str]] = []  # (DeleteType, item id)
        self.impersonated: list[str] = []  # ExchangeImpersonation addresses seen
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._changes = itertools.count(1)
        self._throttles: list[int] = []
        self._failures: list[list[Any]] = []  # [operation, ResponseCode, requests to let by]
        self.folders = {name: _Folder(name, self._new_id("F" + name)) for name in FOLDERS}
        self.ca_file, cert, key = make_ca(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://localhost:{self._server.server_address[1]}/EWS/Exchange.asmx"

    @property
    def authority_url(self) -> str:
        """Where the fake's OAuth authority lives (`{authority_url}/{tenant}/...`)."""
        return f"https://localhost:{self._server.server_address[1]}"

    def __enter__(self) -> EwsFake:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._ntlm_file is not None:
            if self._old_ntlm_file is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._old_ntlm_file

    # -- what the tests do to the mailbox ---------------------------------------------------

    def add(self, folder: str, **fields: Any) -> FakeItem:
        """Deliver (or file) a message into `folder`; returns it. Unnamed fields get
        plausible values: a Message-ID, a conversation of its own, now as its times."""
        with self._lock:
            item = FakeItem(item_id=self._new_id("I"), folder=folder, **fields)
            if item.message_id is None and not item.is_draft:
                item.message_id = f"<{uuid.uuid4().hex}@fake.example>"
            item.conversation_id = item.conversation_id or self._new_id("C")
            item.sent = item.sent or item.received
            self._store(item, "Create")
            return item

    def delete(self, item_id: str) -> None:
        """Remove an item, as a mail client deleting it would."""
        with self._lock:
            item = self.item(item_id)
            folder = self.folders[item.folder]
            del folder.items[item_id]
            folder.log.append(("Delete", item_id))

    def mark_read(self, item_id: str) -> None:
        """The rep reads a message: a ReadFlagChange in the folder's log."""
        with self._lock:
            item = self.item(item_id)
            item.change += 1
            self.folders[item.folder].log.append(("ReadFlagChange", item_id))

    def touch(self, item_id: str, **fields: Any) -> None:
        """Change an item in place (as the rep editing a draft in Outlook)."""
        with self._lock:
            item = self.item(item_id)
            for name, value in fields.items():
                setattr(item, name, value)
            item.change += 1
            self.folders[item.folder].log.append(("Update", item_id))

    def item(self, item_id: str) -> FakeItem:
        with self._lock:
            for folder in self.folders.values():
                if item_id in folder.items:
                    return folder.items[item_id]
        raise KeyError(item_id)

    def items(self, folder: str) -> list[FakeItem]:
        with self._lock:
            return list(self.folders[folder].items.values())

    def throttle(self, back_off_ms: int, times: int = 1) -> None:
        """Answer the next `times` SOAP requests with ErrorServerBusy (BackOffMilliseconds)."""
        with self._lock:
            self._throttles.extend([back_off_ms] * times)

    def fail_next(
        self, operation: str, code: str = "ErrorMailboxStoreUnavailable", *, skip: int = 0
    ) -> None:
        """Answer an `operation` request with a SOAP fault carrying `code`: the next one,
        or the one after `skip` more have been answered."""
        with self._lock:
            self._failures.append([operation, code, skip])

    # -- internals ------------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        raw = f"{kind}:{next(self._ids)}:{secrets.token_hex(6)}".encode()
        return "AAMkAD" + base64.b64encode(raw).decode()

    def _store(self, item: FakeItem, change: str) -> None:
        folder = self.folders[item.folder]
        folder.items[item.item_id] = item
        folder.log.append((change, item.item_id))

    def _folder(self, element: Any) -> _Folder:
        """The folder a DistinguishedFolderId or FolderId names."""
        if element.tag == _q(T, "DistinguishedFolderId"):
            mailbox = element.find(f"{{{T}}}Mailbox/{{{T}}}EmailAddress")
            if mailbox is not None and (mailbox.text or "").lower() != self.mailbox:
                raise _Error("ErrorNonExistentMailbox", "No mailbox with such guid.")
            name = element.get("Id", "")
            if name in self.folders:
                return self.folders[name]
        else:
            for folder in self.folders.values():
                if folder.folder_id == element.get("Id"):
                    return folder
        raise _Error("ErrorFolderNotFound", "The specified folder could not be found in the store.")

    def handle(self, operation: Any, header: Any, *, bearer: bool) -> str:
        """The body of the answer to one SOAP operation element."""
        name = operation.tag.rsplit("}", 1)[-1]
        with self._lock:
            self.operations.append(name)
            for failure in self._failures:
                if failure[0] == name and failure[2] > 0:
                    failure[2] -= 1
                    break
                if failure[0] == name:
                    self._failures.remove(failure)
                    raise _Fault(failure[1], "The fake was told to fail this request.")
            if self._throttles:
                back_off = self._throttles.pop(0)
                raise _Fault(
                    "ErrorServerBusy",
                    "The server cannot service this request right now. Try again later.",
                    f'<t:Value Name="BackOffMilliseconds">{back_off}</t:Value>',
                )
            impersonation = header.find(
                f".//{{{T}}}ExchangeImpersonation//{{{T}}}PrimarySmtpAddress"
            )
            if impersonation is not None:
                self.impersonated.append((impersonation.text or "").lower())
            elif bearer and name != "ConvertId":  # app tokens reach mailboxes by impersonation
                raise _Fault(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                )
            method = getattr(self, f"_op_{name}", None)
            if method is None:
                raise _Fault("ErrorNotSupportedByFake", f"{name} is not implemented by the fake.")
            try:
                messages = list(method(operation))
            except _Error as exc:  # about the request as a whole (its folder, its mailbox)
                messages = [exc.message(name, "")]
        return (
            f'<m:{name}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>'
            + "".join(messages)
            + f"</m:ResponseMessages></m:{name}Response>"
        )

    # -- operations: each yields its ResponseMessage elements --------------------------------

    def _op_ConvertId(self, operation: Any) -> Iterator[str]:
        for _ in operation.iter(_q(T, "AlternateId")):
            yield _error("ConvertId", "ErrorInvalidIdMalformed", "Id is malformed.")

    def _op_GetFolder(self, operation: Any) -> Iterator[str]:
        for element in operation.find(_q(M, "FolderIds")):
            try:
                folder = self._folder(element)
            except _Error as exc:
                yield exc.message("GetFolder", "<m:Folders/>")
                continue
            yield _success(
                "GetFolder",
                f"<m:Folders><t:Folder>{self._folder_xml(folder)}</t:Folder></m:Folders>",
            )

    def _folder_xml(self, folder: _Folder) -> str:
        parent = self.folders["root"].folder_id
        display = _IPF_NOTE.get(folder.name, "Top of Information Store")
        if folder.name == "root":
            display = ""
        return (
            f'<t:FolderId Id="{folder.folder_id}" ChangeKey="AQAAAB"/>'
            f'<t:ParentFolderId Id="{parent}" ChangeKey="AQAAAA=="/>'
            "<t:FolderClass>IPF.Note</t:FolderClass>"
            f"<t:DisplayName>{_x(display)}</t:DisplayName>"
            f"<t:TotalCount>{len(folder.items)}</t:TotalCount>"
            "<t:ChildFolderCount>0</t:ChildFolderCount><t:UnreadCount>0</t:UnreadCount>"
        )

    def _op_SyncFolderItems(self, operation: Any) -> Iterator[str]:
        folder = self._folder(operation.find(_q(M, "SyncFolderId"))[0])
        shape = _shape(operation.find(_q(M, "ItemShape")))
        state = operation.findtext(_q(M, "SyncState"))
        limit = int(operation.findtext(_q(M, "MaxChangesReturned")) or 512)
        start = 0
        if state:
            try:
                token = json.loads(base64.b64decode(state, validate=True))
                start = int(token["position"])
                if token["folder"] != folder.folder_id or not 0 <= start <= len(folder.log):
                    raise ValueError(state)
            except (ValueError, KeyError, TypeError):
                yield _error(
                    "SyncFolderItems",
                    "ErrorInvalidSyncStateData",
                    "Synchronization state data is corrupt or otherwise invalid.",
                    "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>",
                )
                return
        net: dict[str, tuple[str, int]] = {}  # item id -> (change, last position)
        for position, (change, item_id) in enumerate(folder.log[start:], start=start + 1):
            first = net.get(item_id, (change, 0))[0]
            if change == "Delete":
                net[item_id] = ("Gone" if first == "Create" else "Delete", position)
            elif first == "Create" or "Update" in (first, change):
                net[item_id] = ("Create" if first == "Create" else "Update", position)
            else:
                net[item_id] = (change, position)  # ReadFlagChange
        changes = sorted(
            (position, change, item_id)
            for item_id, (change, position) in net.items()
            if change != "Gone"
        )
        returned = changes[:limit]
        complete = len(changes) <= limit
        last = len(folder.log) if complete else returned[-1][0]
        new_state = base64.b64encode(
            json.dumps({"folder": folder.folder_id, "position": last}).encode()
        ).decode()
        parts = []
        for _position, change, item_id in returned:
            if change == "Delete" or item_id not in folder.items:
                parts.append(f'<t:Delete><t:ItemId Id="{item_id}"/></t:Delete>')
                continue
            item = folder.items[item_id]
            if change == "ReadFlagChange":
                parts.append(
                    f'<t:ReadFlagChange><t:ItemId Id="{item_id}" ChangeKey="{item.change_key}"/>'
                    "<t:IsRead>true</t:IsRead></t:ReadFlagChange>"
                )
                continue
            kind = "Create" if change == "Create" else "Update"
            parts.append(f"<t:{kind}>{self._item_xml(folder.items[item_id], shape)}</t:{kind}>")
        yield _success(
            "SyncFolderItems",
            f"<m:SyncState>{new_state}</m:SyncState>"
            f"<m:IncludesLastItemInRange>{str(complete).lower()}</m:IncludesLastItemInRange>"
            f"<m:Changes>{''.join(parts)}</m:Changes>",
        )

    def _op_GetItem(self, operation: Any) -> Iterator[str]:
        shape = _shape(operation.find(_q(M, "ItemShape")))
        for element in operation.find(_q(M, "ItemIds")):
            try:
                item = self._existing(element.get("Id", ""))
            except _Error as exc:
                yield exc.message("GetItem", "<m:Items/>")
                continue
            yield _success("GetItem", f"<m:Items>{self._item_xml(item, shape)}</m:Items>")

    def _existing(self, item_id: str) -> FakeItem:
        try:
            return self.item(item_id)
        except KeyError:
            raise _Error(
                "ErrorItemNotFound", "The specified object was not found in the store."
            ) from None

    def _op_FindItem(self, operation: Any) -> Iterator[str]:
        shape = _shape(operation.find(_q(M, "ItemShape")))
        view = operation.find(_q(M, "IndexedPageItemView"))
        offset = int(view.get("Offset", "0")) if view is not None else 0
        size = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000
        restriction = operation.find(_q(M, "Restriction"))
        for element in operation.find(_q(M, "ParentFolderIds")):
            folder = self._folder(element)
            matching = [
                item
                for item in folder.items.values()
                if restriction is None or _matches(item, restriction[0])
            ]
            page = matching[offset : offset + size]
            last = offset + len(page) >= len(matching)
            yield _success(
                "FindItem",
                f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" '
                f'TotalItemsInView="{len(matching)}" '
                f'IncludesLastItemInRange="{str(last).lower()}"><t:Items>'
                + "".join(self._item_xml(item, shape) for item in page)
                + "</t:Items></m:RootFolder>",
            )

    def _op_CreateItem(self, operation: Any) -> Iterator[str]:
        if operation.get("MessageDisposition", "SaveOnly") != "SaveOnly":
            raise _Fault("ErrorInvalidRequest", "This fake mailbox only saves drafts.")
        target = operation.find(_q(M, "SavedItemFolderId"))
        folder = self._folder(target[0]) if target is not None else self.folders["drafts"]
        for element in operation.find(_q(M, "Items")):
            kind = element.tag.rsplit("}", 1)[-1]
            try:
                if kind == "ReplyToItem":
                    item = self._reply(element, folder)
                elif kind == "Message":
                    item = self._message(element, folder)
                else:
                    raise _Error("ErrorInvalidRequest", f"{kind} is not supported here.")
            except _Error as exc:
                yield exc.message("CreateItem", "<m:Items/>")
                continue
            self._store(item, "Create")
            yield _success(
                "CreateItem",
                f'<m:Items><t:Message><t:ItemId Id="{item.item_id}" '
                f'ChangeKey="{item.change_key}"/></t:Message></m:Items>',
            )

    def _message(self, element: Any, folder: _Folder) -> FakeItem:
        item = FakeItem(
            item_id=self._new_id("I"),
            folder=folder.name,
            is_draft=True,
            conversation_id=self._new_id("C"),
            message_id=f"<{uuid.uuid4().hex}@fake.example>",
        )
        item.sender = (self.mailbox.split("@")[0], self.mailbox)
        _apply_fields(item, element)
        return item

    def _reply(self, element: Any, folder: _Folder) -> FakeItem:
        reference = element.find(_q(T, "ReferenceItemId"))
        original = self._existing(reference.get("Id", "") if reference is not None else "")
        new_body = element.find(_q(T, "NewBodyContent"))
        text = new_body.text or "" if new_body is not None else ""
        sender = original.sender or ("", "")
        quoted = (
            "\r\n\r\n________________________________\r\n"
            f"From: {sender[0]} <{sender[1]}>\r\n"
            f"Sent: {_when(original.sent or original.received)}\r\n"
            f"To: {'; '.join(address for _name, address in original.to)}\r\n"
            f"Subject: {original.subject}\r\n\r\n{original.text}"
        )
        references = " ".join(part for part in (original.references, original.message_id) if part)
        item = FakeItem(
            item_id=self._new_id("I"),
            folder=folder.name,
            subject=element.findtext(_q(T, "Subject")) or f"RE: {original.subject}",
            sender=(self.mailbox.split("@")[0], self.mailbox),
            to=_mailboxes(element.find(_q(T, "ToRecipients"))) or [sender],
            message_id=f"<{uuid.uuid4().hex}@fake.example>",
            in_reply_to=original.message_id,
            references=references or None,
            conversation_id=original.conversation_id,
            body=text + quoted,
            is_draft=True,
        )
        item.sent = None
        return item

    def _op_UpdateItem(self, operation: Any) -> Iterator[str]:
        for change in operation.find(_q(M, "ItemChanges")):
            try:
                item = self._existing(change.find(_q(T, "ItemId")).get("Id", ""))
            except _Error as exc:
                yield exc.message("UpdateItem", "<m:Items/>")
                continue
            for update in change.find(_q(T, "Updates")):
                if update.tag == _q(T, "SetItemField"):
                    _apply_fields(item, update.find(_q(T, "Message")))
                elif update.tag == _q(T, "DeleteItemField"):
                    uri = update.find(_q(T, "ExtendedFieldURI"))
                    if uri is not None:
                        item.extended.pop(_extended_key(uri), None)
            item.change += 1
            self.folders[item.folder].log.append(("Update", item.item_id))
            yield _success(
                "UpdateItem",
                f'<m:Items><t:Message><t:ItemId Id="{item.item_id}" '
                f'ChangeKey="{item.change_key}"/></t:Message></m:Items>'
                "<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>",
            )

    def _op_DeleteItem(self, operation: Any) -> Iterator[str]:
        delete_type = operation.get("DeleteType", "")
        for element in operation.find(_q(M, "ItemIds")):
            item_id = element.get("Id", "")
            try:
                self._existing(item_id)
            except _Error as exc:
                yield exc.message("DeleteItem", "")
                continue
            self.deletes.append((delete_type, item_id))
            self.delete(item_id)
            yield _success("DeleteItem", "")

    # -- items as XML ----------------------------------------------------------------------

    def _item_xml(self, item: FakeItem, shape: _Shape) -> str:  # noqa: PLR0912 (one per element)
        tag = _element_of(item.item_class)
        out = [f"<t:{tag}>"]
        if (shape.mime or shape.wants("item:MimeContent")) and item.mime is not None:
            data = base64.b64encode(item.mime).decode()
            out.append(f'<t:MimeContent CharacterSet="UTF-8">{data}</t:MimeContent>')
        out.append(f'<t:ItemId Id="{item.item_id}" ChangeKey="{item.change_key}"/>')
        parent = self.folders[item.folder].folder_id
        simple = [
            ("item:ParentFolderId", f'<t:ParentFolderId Id="{parent}" ChangeKey="AQAAAA=="/>'),
            ("item:ItemClass", f"<t:ItemClass>{_x(item.item_class)}</t:ItemClass>"),
            ("item:Subject", f"<t:Subject>{_x(item.subject)}</t:Subject>"),
            ("item:Body", f'<t:Body BodyType="{item.body_type}">{_x(item.body)}</t:Body>'),
            (
                "item:DateTimeReceived",
                f"<t:DateTimeReceived>{_when(item.received)}</t:DateTimeReceived>",
            ),
            ("item:Size", f"<t:Size>{len(item.body) + 200}</t:Size>"),
        ]
        for uri, text in simple:
            if shape.wants(uri, default=uri != "item:ParentFolderId"):
                out.append(text)
        if shape.wants("item:InReplyTo") and item.in_reply_to:
            out.append(f"<t:InReplyTo>{_x(item.in_reply_to)}</t:InReplyTo>")
        if shape.wants("item:IsDraft", default=True):
            out.append(f"<t:IsDraft>{str(item.is_draft).lower()}</t:IsDraft>")
        if shape.wants("item:InternetMessageHeaders") and item.headers:
            out.append("<t:InternetMessageHeaders>")
            out += [
                f'<t:InternetMessageHeader HeaderName="{_x(name)}">{_x(value)}'
                "</t:InternetMessageHeader>"
                for name, value in item.headers
            ]
            out.append("</t:InternetMessageHeaders>")
        if shape.wants("item:DateTimeSent", default=True) and item.sent is not None:
            out.append(f"<t:DateTimeSent>{_when(item.sent)}</t:DateTimeSent>")
        if shape.wants("item:DateTimeCreated", default=True):
            out.append(f"<t:DateTimeCreated>{_when(item.received)}</t:DateTimeCreated>")
        for set_id, name, kind in shape.extended:
            value = item.extended.get((set_id, name.lower()))
            if value is not None:
                out.append(
                    "<t:ExtendedProperty>"
                    f'<t:ExtendedFieldURI DistinguishedPropertySetId="{set_id}" '
                    f'PropertyName="{_x(name)}" PropertyType="{kind}"/>'
                    f"<t:Value>{_x(value)}</t:Value></t:ExtendedProperty>"
                )
        if shape.wants("item:ConversationId"):
            out.append(f'<t:ConversationId Id="{item.conversation_id}"/>')
        if shape.wants("item:TextBody"):
            out.append(f'<t:TextBody BodyType="Text">{_x(item.text)}</t:TextBody>')
        if shape.wants("message:Sender") and item.sender:
            out.append(f"<t:Sender>{_mailbox_xml(item.sender)}</t:Sender>")
        for uri, tag_name, people in (
            ("message:ToRecipients", "ToRecipients", item.to),
            ("message:CcRecipients", "CcRecipients", item.cc),
        ):
            if shape.wants(uri, default=True) and people:
                out.append(f"<t:{tag_name}>{''.join(map(_mailbox_xml, people))}</t:{tag_name}>")
        if shape.wants("message:From", default=True) and item.sender:
            out.append(f"<t:From>{_mailbox_xml(item.sender)}</t:From>")
        if shape.wants("message:InternetMessageId") and item.message_id:
            out.append(f"<t:InternetMessageId>{_x(item.message_id)}</t:InternetMessageId>")
        if shape.wants("message:IsRead", default=True):
            out.append("<t:IsRead>true</t:IsRead>")
        if shape.wants("message:References") and item.references:
            out.append(f"<t:References>{_x(item.references)}</t:References>")
        if shape.wants("message:ReplyTo") and item.reply_to:
            out.append(f"<t:ReplyTo>{''.join(map(_mailbox_xml, item.reply_to))}</t:ReplyTo>")
        out.append(f"</t:{tag}>")
        return "".join(out)

    # -- the OAuth authority -----------------------------------------------------------------

    def oauth_document(self, path: str) -> dict[str, Any] | None:
        """The tenant's OpenID configuration, for `GET /{tenant}/v2.0/.well-known/...`."""
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[1:] != ["v2.0", ".well-known", "openid-configuration"]:
            return None
        base = f"{self.authority_url}/{parts[0]}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0",
        }

    def oauth_token(self, form: dict[str, list[str]]) -> dict[str, Any]:
        """The token endpoint: a client secret found in `users` (by client id) gets a token."""
        client = (form.get("client_id") or [""])[0]
        secret = (form.get("client_secret") or [""])[0]
        if form.get("grant_type") != ["client_credentials"] or self.users.get(client) != secret:
            return {"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
        return {"token_type": "Bearer", "expires_in": 3599, "access_token": token}


class _Error(Exception):
    """An error answered in the ResponseMessage (ResponseClass="Error")."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text

    def message(self, operation: str, extra: str) -> str:
        return _error(operation, self.code, self.text, extra)


def _success(operation: str, inner: str) -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Success">'
        f"<m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{operation}ResponseMessage>"
    )


def _error(operation: str, code: str, text: str, extra: str = "") -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Error">'
        f"<m:MessageText>{_x(text)}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode>"
        f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{extra}</m:{operation}ResponseMessage>"
    )


def _element_of(item_class: str) -> str:
    """The element an item is returned as ("ItemClass": a meeting request, response or
    cancellation by its own type; since Exchange 2007 SP1 RU4 every other class, report
    items REPORT.IPM.Note.NDR, .DR, .IPNRN included, as a Message)."""
    upper = item_class.upper()
    if upper.startswith("IPM.SCHEDULE.MEETING.RESP."):
        return "MeetingResponse"
    if upper.startswith("IPM.SCHEDULE.MEETING.CANCELED"):
        return "MeetingCancellation"
    if upper.startswith("IPM.SCHEDULE"):
        return "MeetingRequest"
    return "Message"


def _mailbox_xml(person: tuple[str, str]) -> str:
    name, address = person
    return (
        f"<t:Mailbox><t:Name>{_x(name or address)}</t:Name>"
        f"<t:EmailAddress>{_x(address)}</t:EmailAddress>"
        "<t:RoutingType>SMTP</t:RoutingType><t:MailboxType>OneOff</t:MailboxType></t:Mailbox>"
    )


def _mailboxes(element: Any) -> list[tuple[str, str]]:
    if element is None:
        return []
    return [
        (mailbox.findtext(_q(T, "Name")) or "", mailbox.findtext(_q(T, "EmailAddress")) or "")
        for mailbox in element.iter(_q(T, "Mailbox"))
    ]


def _extended_key(uri: Any) -> tuple[str, str]:
    return (uri.get("DistinguishedPropertySetId", ""), uri.get("PropertyName", "").lower())


def _apply_fields(item: FakeItem, element: Any) -> None:
    """Copy the fields of a t:Message (CreateItem, or SetItemField) onto `item`."""
    for child in element:
        name = child.tag.rsplit("}", 1)[-1]
        if name == "Subject":
            item.subject = child.text or ""
        elif name == "Body":
            item.body, item.body_type = child.text or "", child.get("BodyType", "Text")
        elif name in ("ToRecipients", "CcRecipients", "ReplyTo"):
            setattr(
                item,
                {"ToRecipients": "to", "CcRecipients": "cc"}.get(name, "reply_to"),
                _mailboxes(child),
            )
        elif name == "From":
            people = _mailboxes(child)
            item.sender = people[0] if people else item.sender
        elif name == "InternetMessageId":
            item.message_id = child.text
        elif name == "InReplyTo":
            item.in_reply_to = child.text
        elif name == "References":
            item.references = child.text
        elif name == "ExtendedProperty":
            item.extended[_extended_key(child.find(_q(T, "ExtendedFieldURI")))] = (
                child.findtext(_q(T, "Value")) or ""
            )


def _shape(element: Any) -> _Shape:
    if element is None:
        return _Shape()
    fields: set[str] = set()
    extended = []
    additional = element.find(_q(T, "AdditionalProperties"))
    for child in additional if additional is not None else ():
        if child.tag == _q(T, "FieldURI"):
            fields.add(child.get("FieldURI", ""))
        elif child.tag == _q(T, "ExtendedFieldURI"):
            set_id, name = _extended_key(child)
            extended.append(
                (set_id, child.get("PropertyName", name), child.get("PropertyType", ""))
            )
    return _Shape(
        base=element.findtext(_q(T, "BaseShape")) or "IdOnly",
        fields=frozenset(fields),
        extended=tuple(extended),
        mime=(element.findtext(_q(T, "IncludeMimeContent")) or "").lower() == "true",
    )


def _field_value(item: FakeItem, uri: Any) -> str | None:
    if uri.tag == _q(T, "ExtendedFieldURI"):
        return item.extended.get(_extended_key(uri))
    return {
        "message:InternetMessageId": item.message_id,
        "item:Subject": item.subject,
        "item:InReplyTo": item.in_reply_to,
        "item:ItemClass": item.item_class,
    }.get(uri.get("FieldURI", ""))


def _matches(item: FakeItem, restriction: Any) -> bool:
    """The search expressions of the Restriction element that the tests need."""
    name = restriction.tag.rsplit("}", 1)[-1]
    if name == "And":
        return all(_matches(item, child) for child in restriction)
    if name == "Or":
        return any(_matches(item, child) for child in restriction)
    if name == "Not":
        return not _matches(item, restriction[0])
    if name == "Exists":
        return _field_value(item, restriction[0]) is not None
    if name == "IsEqualTo":
        constant = restriction.find(f"{{{T}}}FieldURIOrConstant/{{{T}}}Constant")
        value = _field_value(item, restriction[0])
        return constant is not None and value is not None and value == constant.get("Value")
    raise _Fault("ErrorUnsupportedQueryFilter", f"{name} is not supported by this fake.")


def _fault(fault: _Fault) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault>'
        f'<faultcode xmlns:a="{T}">a:{fault.code}</faultcode>'
        f'<faultstring xml:lang="en-US">{_x(fault.text)}</faultstring><detail>'
        f'<e:ResponseCode xmlns:e="{E}">{fault.code}</e:ResponseCode>'
        f'<e:Message xmlns:e="{E}">{_x(fault.text)}</e:Message>'
        f'<t:MessageXml xmlns:t="{T}">{fault.message_xml}</t:MessageXml>'
        "</detail></s:Fault></s:Body></s:Envelope>"
    ).encode()


def _handler(fake: EwsFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read `fake.operations` instead."""

        def do_GET(self) -> None:
            document = fake.oauth_document(self.path)
            if document is None:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, json.dumps(document).encode(), "application/json")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/oauth2/v2.0/token"):
                answer = fake.oauth_token(parse_qs(body.decode()))
                status = 400 if "error" in answer else 200
                self._send(status, json.dumps(answer).encode(), "application/json")
                return
            if self.path.lower() != "/ews/exchange.asmx":
                self._send(404, b"not found", "text/plain")
                return
            challenge = self._challenge()
            if challenge is not None:
                self.send_response(401)
                self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            try:
                envelope = ElementTree.fromstring(body)
                operation = envelope.find(_q(SOAP, "Body"))[0]
                header = envelope.find(_q(SOAP, "Header"))
                if header is None:
                    header = ElementTree.fromstring(f'<h xmlns="{SOAP}"/>')
                bearer = self.headers.get("Authorization", "").lower().startswith("bearer ")
                answer = fake.handle(operation, header, bearer=bearer).encode()
            except _Fault as fault:
                self._send(500, _fault(fault), "text/xml; charset=utf-8")
                return
            except _Error as error:  # a request-level error: answered as a fault too
                self._send(500, _fault(_Fault(error.code, error.text)), "text/xml; charset=utf-8")
                return
            envelope_text = (
                (
                    '<?xml version="1.0" encoding="utf-8"?>'
                    f'<s:Envelope xmlns:s="{SOAP}"><s:Header>{_SERVER_VERSION}</s:Header>'
                    "<s:Body>"
                ).encode()
                + answer
                + b"</s:Body></s:Envelope>"
            )
            self._send(200, envelope_text, "text/xml; charset=utf-8")

        def _challenge(self) -> str | None:
            """None when the request may pass, else the WWW-Authenticate to answer 401 with.
            NTLM authenticates the connection, as IIS does: once the three messages have
            been exchanged, later requests on it pass without a header."""
            value = self.headers.get("Authorization", "")
            scheme, _, credentials = value.partition(" ")
            if scheme.lower() == "bearer":
                return None if credentials in fake.tokens else 'Bearer realm="localhost"'
            if fake.auth == "ntlm":
                return self._ntlm(scheme, credentials)
            if scheme.lower() == "basic":
                with contextlib.suppress(ValueError):
                    user, _, password = base64.b64decode(credentials).decode().partition(":")
                    if fake.users.get(user) == password:
                        return None
            return 'Basic realm="localhost"'

        def _ntlm(self, scheme: str, credentials: str) -> str | None:
            if getattr(self, "ntlm_done", False) and not scheme:
                return None
            if scheme.upper() != "NTLM" or not credentials:
                self.ntlm = None
                return "NTLM"
            context = getattr(self, "ntlm", None) or spnego.server(protocol="ntlm")
            try:
                answer = context.step(base64.b64decode(credentials))
            except spnego.exceptions.SpnegoError:
                self.ntlm = None
                return "NTLM"
            if context.complete:
                self.ntlm, self.ntlm_done = None, True
                return None
            self.ntlm = context
            return f"NTLM {base64.b64encode(answer or b'').decode()}"

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
