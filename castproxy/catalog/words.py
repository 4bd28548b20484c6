"""Words for the operation search: identifiers split into words, one vocabulary for documents and queries.

What a lexical index misses is added here, the same way on both sides: abbreviations and a few
synonyms (`repo` -> repository, `PR` -> pull), irregular plurals (FTS5's porter stemmer does the
regular ones), and the verbs of a task, which say which HTTP methods fit (create/open -> POST).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*|[0-9]+")

# Abbreviations and synonyms: word -> words added next to it (documents and queries alike).
ALIASES: dict[str, tuple[str, ...]] = {
    "repo": ("repository",), "repos": ("repository",),
    "org": ("organization",), "orgs": ("organization",), "organisation": ("organization",),
    "pr": ("pull",), "prs": ("pull",), "mr": ("merge", "request"),
    "config": ("configuration",), "configs": ("configuration",), "settings": ("configuration",),
    "env": ("environment",), "envs": ("environment",),
    "auth": ("authentication", "authorization"), "authn": ("authentication",), "authz": ("authorization",),
    "app": ("application",), "apps": ("application",),
    "info": ("information",), "admin": ("administrator",), "admins": ("administrator",),
    "msg": ("message",), "msgs": ("message",), "dm": ("message",), "mail": ("message", "email"),
    "email": ("mail",), "emails": ("mail",),
    "dir": ("directory",), "dirs": ("directory",), "folder": ("directory",), "folders": ("directory",),
    "doc": ("document",), "docs": ("document",), "db": ("database",), "dbs": ("database",),
    "pkg": ("package",), "pkgs": ("package",), "ver": ("version",), "perm": ("permission",),
    "perms": ("permission",), "sub": ("subscription",), "subs": ("subscription",),
    "notif": ("notification",), "notifs": ("notification",), "img": ("image",), "pic": ("photo", "picture"),
    "photo": ("picture",), "picture": ("photo",), "vm": ("virtual", "machine"), "vms": ("virtual", "machine"),
    "k8s": ("kubernetes",), "ns": ("namespace",), "svc": ("service",), "stats": ("statistics",),
    "ci": ("workflow", "pipeline", "build", "check"), "cd": ("deployment",),
    "sha": ("commit",), "log": ("logs",), "logs": ("log",),
    "people": ("user", "member"), "person": ("user", "member"), "someone": ("user",), "somebody": ("user",),
    "men": ("man",), "women": ("woman",), "children": ("child",), "indices": ("index",), "data": ("datum",),
}

# First-person words: the task is about the caller's own account (`/me`, "for the authenticated user").
SELF_WORDS = frozenset({"i", "me", "my", "mine", "myself"})
SELF_TERMS = ("authenticated", "me")

# The verb classes of a task and the methods they imply; `canonical` are the verbs APIs name operations with.
@dataclass(frozen=True)
class VerbClass:
    methods: tuple[str, ...]  # the implied HTTP methods, best first
    canonical: tuple[str, ...]  # added to the query next to the task's own verb


CREATE = VerbClass(("POST", "PUT"), ("create", "add"))
DELETE = VerbClass(("DELETE",), ("delete", "remove"))
READ = VerbClass(("GET",), ())
UPDATE = VerbClass(("PATCH", "PUT"), ("update", "set"))
VERBS: dict[str, VerbClass] = {
    **dict.fromkeys(("create", "add", "new", "open", "make", "post", "submit", "publish", "file", "raise",
                     "insert", "register", "upload", "send", "write", "generate", "invite", "start"), CREATE),
    **dict.fromkeys(("delete", "remove", "drop", "destroy", "erase", "purge", "unset", "discard", "revoke",
                     "deregister", "unregister", "clear"), DELETE),
    **dict.fromkeys(("get", "list", "show", "fetch", "read", "view", "see", "display", "retrieve", "look",
                     "find", "what", "which", "who", "whom", "whose", "how", "where", "when", "lookup",
                     "download", "browse", "enumerate", "count", "check", "inspect", "query"), READ),
    **dict.fromkeys(("update", "edit", "change", "modify", "rename", "alter", "patch", "replace", "set",
                     "configure", "adjust", "toggle", "enable", "disable", "mark", "move", "close",
                     "reopen", "archive"), UPDATE),
}

# Words that carry no task (contractions arrive split: it's -> it, s).
STOPWORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "to", "from", "into", "onto", "in", "on",
    "of", "for", "with", "without", "by", "at", "as", "and", "or", "nor", "but", "so", "if", "then", "than", "is",
    "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "can", "could", "should",
    "would", "will", "shall", "may", "might", "must", "please", "want", "wants", "need", "needs", "let", "lets",
    "via", "using", "use", "just", "also", "all", "any", "some", "every", "each", "our", "ours", "your", "yours",
    "their", "theirs", "them", "they", "he", "she", "his", "her", "we", "us", "you", "there", "here", "about",
    "up", "out", "over", "under", "again", "further", "once", "only", "own", "same", "too", "very", "s", "t", "d",
    "m", "ve", "re", "ll",
})


def identifier_words(text: str) -> list[str]:
    """`repos/list-for-org` -> repos list for org; `listHTTPItems` -> list http items (lower case)."""
    return [part.lower() for part in _IDENTIFIER_PART.findall(text)]


def text_words(text: str) -> list[str]:
    """The words of prose or a path, camelCase split, lower case."""
    words: list[str] = []
    for word in _WORD.findall(text):
        words.extend(identifier_words(word) if not word.islower() and not word.isupper() else [word.lower()])
    return words


def with_aliases(words: list[str]) -> list[str]:
    """The words plus their abbreviation and synonym expansions (for indexing a document)."""
    out: list[str] = []
    for word in words:
        out.append(word)
        out.extend(ALIASES.get(word, ()))
    return out


@dataclass(frozen=True)
class Query:
    """A task phrased in words, analysed: FTS5 term groups (any word of a group may match) and intents."""

    groups: tuple[tuple[str, ...], ...]  # each group: a word of the task and its expansions
    methods: tuple[str, ...]  # HTTP methods the task's verbs imply, best first (empty: no verb)
    about_self: bool  # first-person words: the caller's own account
    text: str  # the query as typed (for exact name matches)

    def fts(self) -> str:
        """An FTS5 MATCH expression: the groups OR-ed, every word quoted (no query syntax gets through)."""
        parts = []
        for group in (*self.groups, SELF_TERMS) if self.about_self else self.groups:
            quoted = [f'"{word}"' for word in group]
            parts.append(quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")")
        return " OR ".join(parts)


def analyse(text: str) -> Query:
    words = text_words(text)
    groups: list[tuple[str, ...]] = []
    methods: list[str] = []
    about_self = False
    seen: set[str] = set()
    for word in words:
        if word in SELF_WORDS:
            about_self = True
            continue
        verb = VERBS.get(word)
        if verb is not None:
            methods.extend(m for m in verb.methods if m not in methods)
        if word in STOPWORDS or word in seen:
            continue
        seen.add(word)
        expansions = (*ALIASES.get(word, ()), *(verb.canonical if verb else ()))
        if verb is READ and word not in ("get", "list", "download", "check", "count", "find"):
            continue  # question words and "show": the method says it all, the word would match everything
        groups.append(tuple(dict.fromkeys((word, *expansions))))
    return Query(tuple(groups), tuple(methods), about_self, text)
