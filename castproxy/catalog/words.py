"""Words for the operation search: identifiers split into words, one vocabulary for documents and queries
(abbreviations, synonyms, irregular plurals, and the verbs that imply HTTP methods).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ALIASES", "STOPWORDS", "VERBS", "Query", "analyse", "identifier_words", "text_words", "with_aliases"]

_IDENTIFIER_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Abbreviations: word -> what it stands for, added next to it with the same weight (documents and queries).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "repo": ("repository",), "repos": ("repository",),
    "org": ("organization",), "orgs": ("organization",), "organisation": ("organization",),
    "pr": ("pull", "request"), "prs": ("pull", "request"), "pulls": ("pull", "request"),
    "mr": ("merge", "request"), "mrs": ("merge", "request"),
    "config": ("configuration",), "configs": ("configuration",),
    "env": ("environment",), "envs": ("environment",),
    "auth": ("authentication", "authorization"), "authn": ("authentication",), "authz": ("authorization",),
    "app": ("application",), "apps": ("application",),
    "info": ("information",), "admin": ("administrator",), "admins": ("administrator",),
    "msg": ("message",), "msgs": ("message",), "dm": ("message",),
    "dir": ("directory",), "dirs": ("directory",),
    "doc": ("document",), "docs": ("document",), "db": ("database",), "dbs": ("database",),
    "pkg": ("package",), "pkgs": ("package",), "ver": ("version",), "perm": ("permission",),
    "perms": ("permission",), "sub": ("subscription",), "subs": ("subscription",),
    "notif": ("notification",), "notifs": ("notification",), "img": ("image",), "pic": ("picture",),
    "vm": ("virtual", "machine"), "vms": ("virtual", "machine"),
    "k8s": ("kubernetes",), "ns": ("namespace",), "svc": ("service",), "stats": ("statistics",),
    "men": ("man",), "women": ("woman",), "children": ("child",), "indices": ("index",), "data": ("datum",),
}

# Synonyms: general API and English vocabulary, not one API's; added next to the word with less weight.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "settings": ("configuration",), "login": ("authenticated", "sign"), "logged": ("authenticated",),
    "signed": ("authenticated",), "mail": ("message", "email"), "email": ("mail",), "emails": ("mail",),
    "folder": ("directory",), "folders": ("directory",), "file": ("content",), "files": ("content",),
    "access": ("permission",), "photo": ("picture",), "picture": ("photo",),
    "ci": ("workflow", "pipeline", "build", "check"), "cd": ("deployment",),
    "sha": ("commit",), "log": ("logs",), "logs": ("log",),
    "people": ("user", "member"), "person": ("user", "member"), "someone": ("user",), "somebody": ("user",),
    "who": ("user", "member"), "find": ("search",), "look": ("search",), "ask": ("request",),
    "move": ("transfer",), "transfer": ("move",), "thumbs": ("reaction",), "upvote": ("reaction",),
    "emoji": ("reaction",), "quota": ("limit",), "newest": ("latest",), "recent": ("latest",),
    "current": ("latest",),
}
ALIASES: dict[str, tuple[str, ...]] = {
    word: (*ABBREVIATIONS.get(word, ()), *SYNONYMS.get(word, ())) for word in {*ABBREVIATIONS, *SYNONYMS}
}

# First-person words: the task is about the caller's own account (`/me`, "for the authenticated user").
SELF_WORDS = frozenset({"i", "me", "my", "mine", "myself"})
SELF_TERMS = ("authenticated", "me")

# The verb classes of a task and the methods they imply; `canonical` are the verbs APIs name operations with.
@dataclass(frozen=True)
class VerbClass:
    methods: tuple[str, ...]  # the implied HTTP methods, best first
    canonical: tuple[str, ...]  # the verbs operations are named with for this class (create, add)


CREATE = VerbClass(("POST", "PUT"), ("create", "add"))
DELETE = VerbClass(("DELETE",), ("delete", "remove"))
READ = VerbClass(("GET",), ())
UPDATE = VerbClass(("PATCH", "PUT"), ("update", "set"))
RUN = VerbClass(("POST",), ("run", "dispatch", "trigger", "start", "create"))
VERBS: dict[str, VerbClass] = {
    **dict.fromkeys(("create", "add", "new", "open", "make", "post", "submit", "publish", "raise", "leave",
                     "insert", "register", "upload", "send", "write", "generate", "invite", "start", "give",
                     "grant", "put", "share"), CREATE),
    **dict.fromkeys(("run", "rerun", "trigger", "launch", "execute", "dispatch", "fire", "kick"), RUN),
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
    return [part.lower() for part in _IDENTIFIER_PART.findall(text)]


def with_aliases(words: list[str]) -> list[str]:
    """The words, then the abbreviation and synonym expansions of those that have some (for indexing)."""
    extra = [alias for word in dict.fromkeys(words) if word in ALIASES for alias in ALIASES[word]]
    return words + extra if extra else words


@dataclass(frozen=True)
class Term:
    word: str
    weight: int  # how many times the phrase enters the bm25 sum
    prefix: bool = False  # also match words starting with it (assign -> assignees)


@dataclass(frozen=True)
class Query:
    """A task phrased in words, analysed: weighted FTS5 terms per word of the task, and its intents."""

    groups: tuple[tuple[str, ...], ...]  # each group: a word of the task and its expansions
    terms: tuple[Term, ...]
    methods: tuple[str, ...]  # HTTP methods the task's first verb implies, best first (empty: none)
    lead: str | None  # the task's first word that is not a stopword: usually what to do
    about_self: bool  # first-person words: the caller's own account
    plural: bool  # a plural noun: likely a collection (list) rather than one item

    def fts(self, matches: Callable[[str], int] | None = None, common: int = 0) -> str:
        """An FTS5 MATCH expression: the terms OR-ed, each as often as its weight (bm25 sums over the phrases
        of the query), plus a prefix form of long words (assign -> assignees), every word quoted.

        `matches(phrase)`: in how many operations the phrase is (for a big catalog). FTS5 scores every row
        that matches, so only the task's rare words (in `common` operations or fewer) choose the rows; the
        other terms count where one of those is (`"user" AND ("password" OR ...)`), which keeps them in the
        ranking at a fraction of the cost. A task of common words only is anchored on its rarest noun."""
        weighted: list[tuple[str, int]] = []
        own: list[str] = []  # phrases that may choose rows: the task's words (weight 2), not synonyms or pairs
        for term in (*self.terms, *(Term(word, 1) for word in SELF_TERMS)) if self.about_self else self.terms:
            phrase = f'"{term.word}"'
            weighted.append((phrase, term.weight))
            if term.weight >= ORIGINAL_WEIGHT:
                own.append(phrase)
            if term.prefix:
                weighted.append((phrase + "*", 1))
        if matches is None:
            return " OR ".join(phrase for phrase, weight in weighted for _ in range(weight))
        own = own or [phrase for phrase, _ in weighted if " " not in phrase and not phrase.endswith("*")]
        counts = {phrase: matches(phrase) for phrase in own}
        rare = {phrase for phrase in own if counts[phrase] <= common}
        if not rare and own:
            rare = {min(own, key=lambda phrase: (phrase.strip('"') in VERBS, counts[phrase]))}
        rare |= {prefix for prefix in (phrase + "*" for phrase in rare) if prefix in dict(weighted)
                 and matches(prefix) <= common}
        parts = [phrase for phrase, weight in weighted if phrase in rare for _ in range(weight)]
        others = [phrase for phrase, weight in weighted if phrase not in rare for _ in range(weight)]
        if others:
            parts.append(f"({' OR '.join(others)}) AND ({' OR '.join(dict.fromkeys(parts))})")
        return " OR ".join(parts)

    def pairs(self) -> str:
        """An FTS5 MATCH expression for rows with two of the task's words or more (any of a word's
        expansions), or with its one word: cheap on a short column (an operation's action)."""
        groups = ["(" + " OR ".join(f'"{word}"' for word in dict.fromkeys(group)) + ")" for group in self.groups]
        if len(groups) < 2:
            return " OR ".join(groups)
        return " OR ".join(f"{first} AND ({' OR '.join(groups[index + 1:])})"
                           for index, first in enumerate(groups[:-1]))


ORIGINAL_WEIGHT = 2  # a word of the task (and what its abbreviation stands for) counts twice a synonym
PHRASE_WEIGHT = 1  # two neighbouring words of the task, found next to each other ("pull requests")
MIN_PREFIX = 4


# Idioms whose words mislead a word index ("logged" is not about logs): replaced before the analysis.
IDIOMS: dict[tuple[str, str], str] = {
    ("logged", "in"): "authenticated", ("signed", "in"): "authenticated", ("log", "in"): "login",
    ("sign", "in"): "login", ("kick", "off"): "start", ("look", "up"): "get", ("thumbs", "up"): "reaction",
    ("set", "up"): "create",
}
# Words that ask for a collection (a list) rather than one item, like a plural noun does.
COLLECTION_WORDS = frozenset({"all", "every", "history"})


def _without_idioms(words: list[str]) -> list[str]:
    out: list[str] = []
    index = 0
    while index < len(words):
        replaced = IDIOMS.get((words[index], words[index + 1])) if index + 1 < len(words) else None
        out.append(replaced or words[index])
        index += 2 if replaced else 1
    return out


def analyse(text: str) -> Query:
    words = _without_idioms([word for word in text_words(text) if not word.isdigit()])  # numbers: argument values
    groups: list[tuple[str, ...]] = []
    terms: list[Term] = []
    methods: tuple[str, ...] = ()
    intent: VerbClass | None = None
    lead: str | None = None
    about_self = plural = False
    seen: set[str] = set()
    previous: str | None = None
    for word in words:
        if word in SELF_WORDS:
            about_self = True
            previous = None
            continue
        if word in COLLECTION_WORDS:
            plural = True
        verb = VERBS.get(word) if not methods else None  # the first verb says what to do; later ones are words
        if verb is not None:
            methods, intent = verb.methods, verb
        # "create a NEW user": the intent said again, a weak word (boilerplate like "Create new ..." is everywhere)
        repeated = verb is None and intent is not None and intent is not READ and VERBS.get(word) is intent
        if lead is None and word not in STOPWORDS:
            lead = word
        if word in STOPWORDS or word in seen:
            previous = None
            continue
        seen.add(word)
        same, similar = ABBREVIATIONS.get(word, ()), SYNONYMS.get(word, ())
        if verb is READ and word not in ("get", "list", "download", "check", "count", "find", "search"):
            # Question words and "show": the method says it all; only their synonyms (who -> user) are words.
            if similar:
                groups.append(similar)
                terms.extend(Term(alias, 1) for alias in similar)
            previous = None
            continue
        if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            plural = True
        groups.append(tuple(dict.fromkeys((word, *same, *similar))))
        terms.append(Term(word, 1) if repeated else Term(word, ORIGINAL_WEIGHT, prefix=len(word) >= MIN_PREFIX))
        terms.extend(Term(alias, ORIGINAL_WEIGHT) for alias in same)
        terms.extend(Term(alias, 1) for alias in similar)
        if previous is not None:
            terms.append(Term(f"{previous} {word}", PHRASE_WEIGHT))
        previous = word
    return Query(tuple(groups), tuple(terms), methods, lead, about_self, plural)
