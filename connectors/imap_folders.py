"""Which of an IMAP account's mailboxes are INBOX, Sent and Drafts.

`choose_folders` reads a LIST answer: RFC 6154 special-use attributes first, then, for
servers without them, the best-known localized or provider name (after an `INBOX.`,
`INBOX/` or `[Gmail]/` prefix). Pure: names and attributes in, folders out.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import FolderRole, RemoteFolder

__all__ = ["DRAFTS_NAMES", "SENT_NAMES", "choose_folders"]

# Localized and provider names of Sent and Drafts, for servers without SPECIAL-USE
# (compared case-insensitively, after an `INBOX.`, `INBOX/` or `[Gmail]/` prefix).
SENT_NAMES: tuple[str, ...] = (
    "sent", "sent items", "sent messages", "sent mail", "sent-mail", "sent e-mails",
    "gesendet", "gesendete elemente", "gesendete objekte", "gesendete nachrichten",
    "envoyés", "éléments envoyés", "messages envoyés", "envoyes", "elements envoyes",
    "enviados", "elementos enviados", "itens enviados", "mensagens enviadas",
    "inviati", "posta inviata", "elementi inviati", "verzonden", "verzonden items",
    "verzonden berichten", "skickat", "skickade objekt", "skickade meddelanden", "sendt",
    "sendte elementer", "sendte", "lähetetyt", "lähetetyt viestit", "wysłane",
    "elementy wysłane", "odeslané", "odeslaná pošta", "odoslané", "elküldött",
    "elküldött elemek", "gönderilmiş öğeler", "gönderilenler", "trimise", "poslano",
    "отправленные", "надіслані", "送信済みアイテム", "送信済み", "已发送", "寄件備份",
)  # fmt: skip
DRAFTS_NAMES: tuple[str, ...] = (
    "drafts", "draft", "entwürfe", "brouillons", "borradores", "rascunhos", "bozze",
    "concepten", "utkast", "kladder", "kladde", "wersje robocze", "koncepty", "rozepsané",
    "luonnokset", "piszkozatok", "taslaklar", "ciorne", "черновики", "чернетки",
    "下書き", "草稿", "草稿箱",
)  # fmt: skip
_NAME_PREFIXES = ("inbox", "[gmail]", "[google mail]")


def choose_folders(
    mailboxes: Sequence[tuple[frozenset[str], str | None, str]],
) -> list[RemoteFolder]:
    """INBOX, Sent and Drafts from a LIST: attributes first, then the best-known name."""
    selectable = [
        (attributes, delimiter, name)
        for attributes, delimiter, name in mailboxes
        if not attributes & {"\\noselect", "\\nonexistent"}
    ]
    inbox = next((name for _, _, name in selectable if name.upper() == "INBOX"), "INBOX")
    found = [RemoteFolder(inbox, FolderRole.INBOX)]
    for role, attribute, names in (
        (FolderRole.SENT, "\\sent", SENT_NAMES),
        (FolderRole.DRAFTS, "\\drafts", DRAFTS_NAMES),
    ):
        by_attribute = [name for attributes, _, name in selectable if attribute in attributes]
        if by_attribute:
            found.append(RemoteFolder(by_attribute[0], role))
            continue
        ranked = sorted(
            (names.index(base), len(name), name)
            for _, delimiter, name in selectable
            if (base := _base_name(name, delimiter)) in names and name.upper() != "INBOX"
        )
        if ranked:
            found.append(RemoteFolder(ranked[0][2], role))
    return found


def _base_name(name: str, delimiter: str | None) -> str:
    lowered = name.casefold()
    separators = {delimiter, "/", "."} - {None}
    for prefix in _NAME_PREFIXES:
        for separator in separators:
            if separator and lowered.startswith(prefix + separator):
                return lowered[len(prefix) + len(separator) :]
    return lowered
