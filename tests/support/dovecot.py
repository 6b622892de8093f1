"""A private Dovecot IMAP server on loopback, for the tests and the benchmarks.

Everything lives in one temporary directory: configuration, sockets, state, logs, TLS
certificate and the users' Maildirs. Nothing system-wide is read or touched. Dovecot
refuses to keep mail as uid 0, so when we run as root the mail belongs to `nobody`
and the directory is made traversable for it.

    with DovecotServer.start(users={"dana": "secret"}) as server:
        server.append("dana", "Sent", raw_bytes, flags=[b"\\Seen"])
        ... connect to 127.0.0.1:server.port (plain) or server.tls_port (TLS) ...

`oauth2_introspection_url` adds OAuth 2.0 bearer tokens (SASL XOAUTH2 and OAUTHBEARER)
next to the passwords: Dovecot's oauth2 passdb POSTs each token to that URL (RFC 7662
introspection, `token=...`) and accepts it when the JSON answer has `"active": true`
and a `username` equal to the user logging in. The test runs the endpoint.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import imapclient

__all__ = ["DovecotServer", "DovecotUnavailable", "dovecot_binary"]

DEFAULT_MAILBOXES = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash"}


class DovecotUnavailable(RuntimeError):
    """Dovecot is not installed or would not start here."""


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config_quote(name: str) -> str:
    """A mailbox name as a dovecot.conf section name (names with spaces need quotes)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _mail_owner() -> tuple[int, int, str]:
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid, "dovecot"
    me = pwd.getpwuid(os.geteuid())
    return me.pw_uid, me.pw_gid, me.pw_name


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class DovecotServer:
    root: Path
    port: int
    tls_port: int
    users: dict[str, str]
    cert_file: Path
    process: subprocess.Popen[bytes] | None = None
    uid: int = 0
    gid: int = 0
    _maildir_counter: int = field(default=0)

    @classmethod
    def start(
        cls,
        users: dict[str, str] | None = None,
        *,
        special_use: dict[str, str] | None = None,
        extra_config: str = "",
        oauth2_introspection_url: str | None = None,
    ) -> DovecotServer:
        """Start a server. `special_use` maps mailbox names to their attribute
        (default Sent, Drafts, Trash with \\Sent, \\Drafts, \\Trash); pass {} to offer
        none, so clients must fall back to names. `oauth2_introspection_url`: see the
        module docstring."""
        binary = dovecot_binary()
        if binary is None:
            raise DovecotUnavailable("dovecot is not installed (make test installs dovecot-imapd)")
        users = dict(users or {"dana": "dana-secret"})
        mailboxes = DEFAULT_MAILBOXES if special_use is None else special_use
        root = Path(tempfile.mkdtemp(prefix="relight-dovecot-"))
        root.chmod(0o755)
        uid, gid, internal_user = _mail_owner()
        for sub in ("run", "state", "home"):
            (root / sub).mkdir()
        (root / "home").chmod(0o755)
        lines = []
        for user, password in users.items():
            home = root / "home" / user
            (home / "Maildir").mkdir(parents=True)
            for path in (home, home / "Maildir"):
                os.chown(path, uid, gid)
            lines.append(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{home}::")
        (root / "users").write_text("\n".join(lines) + "\n")
        cert, key = _self_signed_certificate(root)
        port, tls_port = _free_port(), _free_port()
        mailbox_config = "\n".join(
            f"  mailbox {_config_quote(name)} {{\n    auto = subscribe\n"
            + (f"    special_use = {attribute}\n" if attribute else "")
            + "  }"
            for name, attribute in mailboxes.items()
        )
        mechanisms, oauth2_passdb, password_mechanisms = "plain login", "", ""
        if oauth2_introspection_url is not None:
            mechanisms, oauth2_passdb = _oauth2_passdb(root, oauth2_introspection_url)
            password_mechanisms = "  mechanisms = plain login\n"
        (root / "dovecot.conf").write_text(
            f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = {internal_user}
default_login_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
{oauth2_passdb}passdb {{
  driver = passwd-file
{password_mechanisms}  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailbox_config}
}}
{extra_config}
"""
        )
        process = subprocess.Popen(
            [binary, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = cls(root, port, tls_port, users, cert, process, uid, gid)
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise DovecotUnavailable(f"dovecot exited at start: {err.strip()} {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise DovecotUnavailable(f"dovecot did not answer within {timeout}s: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- filling mailboxes (test setup only: Relight itself never writes like this) --

    def client(self, user: str) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        *,
        flags: Sequence[bytes | str] = (),
        when: datetime | None = None,
    ) -> int | None:
        """APPEND one message; returns its UID (Dovecot has UIDPLUS)."""
        with self.client(user) as client:
            return _append(client, folder, raw, flags, when)

    def append_many(
        self, user: str, folder: str, messages: Iterable[bytes], flags: Sequence[bytes | str] = ()
    ) -> list[int | None]:
        with self.client(user) as client:
            return [_append(client, folder, raw, flags, None) for raw in messages]

    def create_folder(self, user: str, folder: str) -> None:
        with self.client(user) as client:
            client.create_folder(folder)

    def maildir_path(self, user: str, folder: str) -> Path:
        base = self.root / "home" / user / "Maildir"
        return base if folder.upper() == "INBOX" else base / f".{folder}"

    def write_maildir(
        self, user: str, folder: str, messages: Iterable[bytes], *, seen: bool = True
    ) -> int:
        """Drop messages straight into the Maildir (fast bulk fill for benchmarks);
        Dovecot indexes them on first access. Returns how many were written."""
        path = self.maildir_path(user, folder)
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        count = 0
        flag_suffix = ":2,S" if seen else ":2,"
        for raw in messages:
            self._maildir_counter += 1
            name = f"{int(time.time())}.R{uuid.uuid4().hex[:12]}.M{self._maildir_counter}.relight"
            (path / "cur" / f"{name}{flag_suffix}").write_bytes(raw)
            count += 1
        for dirpath, _dirs, files in os.walk(self.root / "home" / user):
            os.chown(dirpath, self.uid, self.gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), self.uid, self.gid)
        return count

    def maildir_uids(self, user: str, folder: str) -> dict[int, str]:
        """UID -> Maildir file base name, from Dovecot's dovecot-uidlist (written once
        Dovecot has indexed the folder), to tie synced messages back to their files."""
        uidlist = self.maildir_path(user, folder) / "dovecot-uidlist"
        mapping = {}
        for line in uidlist.read_text(errors="replace").splitlines()[1:]:
            uid, _, name = line.partition(" :")
            if name and uid.split(" ", 1)[0].isdigit():
                mapping[int(uid.split(" ", 1)[0])] = name.split(":", 1)[0]
        return mapping

    def flags(self, user: str, folder: str) -> dict[int, tuple[bytes, ...]]:
        """UID -> flags of every message in the folder (read with EXAMINE)."""
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()}

    def expunge(self, user: str, folder: str, uids: Iterator[int] | Sequence[int]) -> None:
        with self.client(user) as client:
            client.select_folder(folder)
            client.delete_messages(list(uids))
            client.expunge()

    def reset_uidvalidity(self, user: str, folder: str) -> None:
        """Make the server assign a new UIDVALIDITY to the folder (as after a restore)."""
        for name in ("dovecot-uidlist", "dovecot.index", "dovecot.index.cache",
                     "dovecot.index.log", "dovecot-uidvalidity"):  # fmt: skip
            (self.maildir_path(user, folder) / name).unlink(missing_ok=True)


def _oauth2_passdb(root: Path, introspection_url: str) -> tuple[str, str]:
    """The auth mechanisms and the oauth2 passdb section (doc.dovecot.org, 2.3,
    configuration_manual/authentication/oauth2: "passdb { driver = oauth2, mechanisms =
    xoauth2 oauthbearer, args = <file> }", and its WSO2 example of introspection_mode =
    post with active_attribute / active_value). Tokens go to the oauth2 passdb only;
    passwords to passwd-file only."""
    (root / "dovecot-oauth2.conf.ext").write_text(
        f"""introspection_mode = post
introspection_url = {introspection_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""
    )
    passdb = f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
"""
    return "plain login xoauth2 oauthbearer", passdb


def _append(
    client: imapclient.IMAPClient,
    folder: str,
    raw: bytes,
    flags: Sequence[bytes | str],
    when: datetime | None,
) -> int | None:
    response = client.append(folder, raw, flags=tuple(flags), msg_time=when)
    # b'[APPENDUID 1234 5] Append completed.'
    text = response.decode() if isinstance(response, bytes) else str(response)
    if "APPENDUID" in text:
        return int(text.split("APPENDUID", 1)[1].split("]")[0].split()[1])
    return None
