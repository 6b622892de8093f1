"""Conversations: which messages belong together (SPEC section 2, "conversation").

`thread(messages)` groups plain `Message` values into `Conversation`s. Two kinds of evidence
link messages, and a conversation is everything they connect:

* the provider's thread id (`Message.thread_id`: Gmail X-GM-THRID, Graph/EWS
  conversationId): every message carrying the same id is in the same conversation;
* the headers (Message-ID, In-Reply-To, References), threaded the way Jamie Zawinski
  describes (https://www.jwz.org/doc/threading.html).

The subject is never a link: two "Quick question" mails that reference nothing are two
conversations. `rules.subjects.base_subject` only names a conversation once it is built.

Theory of operation
-------------------
1. *Duplicates collapse.* Copies with the same Message-ID (the same mail stored in two
   folders or two accounts) become one entry: the Sent copy is preferred (it is what went
   out), then the Inbox copy, then a Drafts copy; ties go to the earliest. Only that copy's
   headers link it (a bug tracker may rewrite References on each copy it sends out), but
   the thread ids of every copy count: the copies are one message, present in each thread.
   Messages without a Message-ID are never merged with another, unless exactly equal.
2. *Containers* (JWZ's id table). One container per Message-ID, message or referenced: a
   referenced id whose message is absent gets an empty ("dummy") container, so two replies
   to a message we never saw still meet. A message without a Message-ID gets a container
   of its own that nothing else can point to.
3. *Parents.* A message's chain is its References in order (repeats and its own id
   dropped), with In-Reply-To moved to the end when present: In-Reply-To names the direct
   parent even when References are missing, truncated, misspelt or in the wrong order.
   The message's own headers decide its own parent, the last id of its chain, whatever
   other messages claimed. Consecutive ids of a chain link the containers that have no
   parent yet: empty ones, and messages that name no parent themselves (a root the
   sender's mailer knew more about); the first claim wins (JWZ's "don't change existing
   links"). Entries are visited in time order, so the result does not depend on the
   order the caller passes messages in.
4. *Loops.* Parents are assigned without asking whether a link closes a loop (that walk
   is quadratic on deep chains); instead one linear pass over the parent links finds each
   cycle and cuts it above its earliest message, which becomes a root. Reference loops,
   self-references and garbled References therefore end as a forest.
5. *Conversations.* Each tree of the forest is one conversation; trees sharing a provider
   thread id are merged (union-find). A reply whose headers point into another provider
   thread merges the two threads: a reply can come through another account's copy, and
   Gmail starts a new thread when the subject changes though the headers still say reply.
   Provider ids only ever add links; they never split what the headers join. Callers that
   thread several accounts together and fear two providers' ids colliding should prefix
   the ids (for example with the account name) before building the `Message`s.

Empty containers never appear in a conversation; they only link messages and, pruned as
JWZ prunes them, can name it. The *root* of a tree is its top container once empty
containers with a single child are skipped: the top message, or the never-seen message
that several replies share. The conversation's subject is the base subject of its top
message (the earliest one, when several replies hang below a missing root), else the first
non-empty base subject in time order, else "".

Keys: `thread:<id>` (the provider thread id of the earliest message carrying one) when the
conversation has provider ids, else `<message-id>` of its root, else, for a lone message
without any id, `message:<digest of the message>`. A key stays while replies arrive (junk
ids at the front of References included); a header key changes only when the root does:
a missing parent turns up below which a single reply was hanging, or a second reply to a
missing message makes that message the root.

Everything is iterative and linear apart from the sorts: no recursion, so a chain ten
thousand replies deep costs what ten thousand separate messages cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from rules.message import Folder, Message
from rules.subjects import base_subject

__all__ = ["Conversation", "thread"]


@dataclass(frozen=True)
class Conversation:
    """One conversation: its stable key, its messages (oldest first) and its base subject.

    `subject` is "" when every message's subject is only prefixes or empty (callers show
    "(no subject)").
    """

    key: str
    messages: tuple[Message, ...]
    subject: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("conversation key must be non-empty")
        object.__setattr__(self, "messages", tuple(self.messages))
        if not self.messages:
            raise ValueError("a conversation holds at least one message")
        for earlier, later in zip(self.messages, self.messages[1:], strict=False):
            if later.at < earlier.at:
                raise ValueError("conversation messages must be sorted by time")

    @property
    def last(self) -> Message:
        """The latest message (the last one when several share the latest time)."""
        return self.messages[-1]


_NO_PARENT = -1

# Which copy of a duplicated Message-ID stands for the message.
_FOLDER_RANK = {Folder.SENT: 0, Folder.INBOX: 1, Folder.DRAFTS: 2}


@dataclass(frozen=True, slots=True)
class _Entries:
    """The distinct messages in time order, and the thread ids of duplicated ones.

    Container `i` holds `messages[i]` for `i < len(messages)`; containers past that are
    the empty ones, created for ids that are referenced but were never seen.
    """

    messages: list[Message]
    copies_threads: dict[str, tuple[str, ...]]

    def thread_ids(self, position: int) -> tuple[str, ...]:
        message = self.messages[position]
        if message.message_id is not None and message.message_id in self.copies_threads:
            return self.copies_threads[message.message_id]
        return () if message.thread_id is None else (message.thread_id,)


def thread(messages: Iterable[Message]) -> list[Conversation]:
    """Group messages into conversations, ordered by latest message time, then key.

    Never raises on bad linking (loops, self-references, missing parents, duplicates,
    messages without Message-ID) and never groups by subject.
    """
    entries = _distinct(messages)
    parent, ids = _link(entries.messages)
    held = len(entries.messages)
    _cut_cycles(parent, held)
    root, message_above = _roots(parent, held)
    children = _child_counts(parent)
    component = _merge_provider_threads(entries, root)

    members: dict[int, list[int]] = {}
    for position in range(held):
        members.setdefault(component[root[position]], []).append(position)

    subjects: dict[str, str] = {}  # base_subject is pure, and mailboxes repeat subjects
    conversations = []
    for component_root, group in members.items():
        in_time_order = [entries.messages[position] for position in group]
        tops = (position for position in group if not message_above[position])
        conversations.append(
            Conversation(
                key=_key(group, entries, ids[_pruned_root(component_root, held, children)]),
                messages=tuple(in_time_order),
                subject=_subject(entries.messages[next(tops)], in_time_order, subjects),
            )
        )
    conversations.sort(key=lambda conversation: (conversation.last.at, conversation.key))
    return conversations


def _distinct(messages: Iterable[Message]) -> _Entries:
    """One entry per distinct message, in time order (step 1 of the module docstring).

    Written to allocate little: at a hundred thousand messages the garbage collector's
    passes over fresh tuples cost more than the threading itself.
    """
    chosen: dict[str, Message] = {}
    duplicates: dict[str, list[Message]] = {}
    loose: dict[Message, None] = {}  # no Message-ID: only exact repeats collapse
    for message in messages:
        message_id = message.message_id
        if message_id is None:
            loose[message] = None
            continue
        first = chosen.setdefault(message_id, message)
        if first is not message:
            duplicates.setdefault(message_id, [first]).append(message)

    copies_threads: dict[str, tuple[str, ...]] = {}
    for message_id, copies in duplicates.items():
        best = chosen[message_id] = min(copies, key=_copy_rank)
        copies_threads[message_id] = tuple(
            dict.fromkeys(copy.thread_id for copy in (best, *copies) if copy.thread_id is not None)
        )

    # Message-IDs are unique by now, and a repr tells apart messages without one, so the
    # order is total and does not depend on the order the caller passed messages in. Two
    # stable sorts by existing values (id, then time) allocate no key tuples.
    with_id = sorted(chosen.values(), key=attrgetter("message_id"))
    without_id = sorted(loose, key=repr)
    ordered = with_id + without_id
    ordered.sort(key=attrgetter("at"))
    return _Entries(ordered, copies_threads)


def _copy_rank(copy: Message) -> tuple[int, datetime, str]:
    """Which copy of a duplicated Message-ID stands for it: Sent, Inbox, Drafts; earliest."""
    return (_FOLDER_RANK[copy.folder], copy.at, repr(copy))


def _link(messages: list[Message]) -> tuple[list[int], list[str | None]]:
    """Containers and their parent links (steps 2 and 3): `parent` and `ids` by container."""
    held = len(messages)
    ids: list[str | None] = [message.message_id for message in messages]
    index = {message_id: position for position, message_id in enumerate(ids) if message_id}
    parent = [_NO_PARENT] * held
    visited_by = [_NO_PARENT] * held  # which message's chain last passed each container

    def place(ancestor: str, above: int, position: int) -> int:
        """Put `ancestor` below `above` in `position`'s chain; the chain's new end."""
        container = index.get(ancestor)
        if container is None:
            container = index[ancestor] = len(ids)
            ids.append(ancestor)
            parent.append(_NO_PARENT)
            visited_by.append(_NO_PARENT)
        elif visited_by[container] == position:
            return above  # an id repeated in References
        visited_by[container] = position
        # The first chain that places a container keeps it there (JWZ: "don't change
        # existing links"); a message's own headers still override this below.
        if above != _NO_PARENT and parent[container] == _NO_PARENT:
            parent[container] = above
        return container

    for position, message in enumerate(messages):
        own_id = message.message_id
        direct = message.in_reply_to if message.in_reply_to != own_id else None
        above = _NO_PARENT
        skipped = (own_id, direct)
        for reference in message.references:
            if reference not in skipped:
                above = place(reference, above, position)
        if direct is not None:
            above = place(direct, above, position)
        if above != _NO_PARENT:
            parent[position] = above
    return parent, ids


def _cut_cycles(parent: list[int], held: int) -> None:
    """Cut every cycle of the parent links above its earliest message (step 4).

    Containers below `held` hold messages, in time order, so the lowest index in a cycle
    is its earliest message; a cycle of empty containers only is cut at the first made.
    """
    unseen, on_path, done = 0, 1, 2
    state = [unseen] * len(parent)
    path: list[int] = []
    for start in range(len(parent)):
        path.clear()
        node = start
        while node != _NO_PARENT and state[node] == unseen:
            state[node] = on_path
            path.append(node)
            node = parent[node]
        if node != _NO_PARENT and state[node] == on_path:
            cycle = path[path.index(node) :]
            parent[min(cycle)] = _NO_PARENT
        for container in path:
            state[container] = done


def _roots(parent: list[int], held: int) -> tuple[list[int], list[bool]]:
    """Each container's tree root, and whether a message sits anywhere above it."""
    root = [_NO_PARENT] * len(parent)
    message_above = [False] * len(parent)
    path: list[int] = []
    for start in range(len(parent)):
        if root[start] != _NO_PARENT:
            continue
        path.clear()
        node = start
        while node != _NO_PARENT and root[node] == _NO_PARENT:
            path.append(node)
            node = parent[node]
        if node == _NO_PARENT:
            top, above = path[-1], False
        else:
            top, above = root[node], message_above[node] or node < held
        for container in reversed(path):
            root[container] = top
            message_above[container] = above
            above = above or container < held
    return root, message_above


def _child_counts(parent: list[int]) -> tuple[list[int], list[int]]:
    """How many children each container has, and one of them (the only one when 1)."""
    count = [0] * len(parent)
    some_child = [_NO_PARENT] * len(parent)
    for container, above in enumerate(parent):
        if above != _NO_PARENT:
            count[above] += 1
            some_child[above] = container
    return count, some_child


def _pruned_root(root: int, held: int, children: tuple[list[int], list[int]]) -> int:
    """The root once empty containers with a single child are pruned (JWZ step 4)."""
    count, some_child = children
    while root >= held and count[root] == 1:
        root = some_child[root]
    return root


def _merge_provider_threads(entries: _Entries, root: list[int]) -> list[int]:
    """Map each tree root to its conversation's representative root (step 5)."""
    link = list(range(len(root)))

    def find(node: int) -> int:
        while link[node] != node:
            link[node] = link[link[node]]
            node = link[node]
        return node

    first_tree: dict[str, int] = {}
    for position in range(len(entries.messages)):
        for thread_id in entries.thread_ids(position):
            mine = find(root[position])
            other = find(first_tree.setdefault(thread_id, mine))
            if other != mine:
                link[max(other, mine)] = min(other, mine)
    return [find(node) for node in range(len(root))]


def _key(group: list[int], entries: _Entries, root_id: str | None) -> str:
    for position in group:
        thread_ids = entries.thread_ids(position)
        if thread_ids:
            return f"thread:{thread_ids[0]}"
    # Without provider ids nothing merged trees: the group is the one tree under its root.
    if root_id is not None:
        return f"<{root_id}>"
    lone = entries.messages[group[0]]
    return "message:" + hashlib.sha256(repr(lone).encode("utf-8")).hexdigest()[:32]


def _subject(top: Message, messages: list[Message], cache: dict[str, str]) -> str:
    """The top message's base subject, else the first non-empty one in time order."""
    for message in (top, *messages):
        subject = cache.get(message.subject)
        if subject is None:
            subject = cache[message.subject] = base_subject(message.subject)
        if subject:
            return subject
    return ""
