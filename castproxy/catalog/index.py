"""An in-memory full-text index of a workspace's operations, ranked for tasks phrased in words.

SQLite FTS5 finds the candidates, then a re-ranking adds what bm25 cannot see (docs/architecture.md,
"Operation search").
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from castproxy.catalog.words import (
    ALIASES,
    STOPWORDS,
    VERBS,
    Query,
    analyse,
    identifier_words,
    text_words,
    with_aliases,
)
from castproxy.openapi.model import ToolDefinition

__all__ = ["Hit", "SearchIndex", "index_for", "summary_of"]

# bm25 weights of the columns, in table order: what an operation is called counts most, prose least.
# `action` is the name's last part (CreateUser in users.user.CreateUser, create-fork in repos/create-fork): what
# the operation does, without the resource path a big API repeats in thousands of names.
COLUMNS = ("action", "name", "summary", "tags", "path", "description")
WEIGHTS = (0.0, 5.0, 3.0, 1.0, 1.5, 0.6)  # the action counts in the second query only (see `search`)
ACTION_WEIGHTS = (5.0, 0.0, 0.0, 0.0, 0.0, 0.0)
CANDIDATES = 100  # bm25's best, re-ranked
LEXICAL_WEIGHT = 1.0  # bm25 relative to the best candidate's, next to the bonuses below
MAX_DESCRIPTION_CHARS = 600  # the start of a description says what it does; the rest mostly dilutes
PRIMARY_METHOD_BONUS = 0.35  # the method the task's first verb implies
OTHER_METHOD_BONUS = 0.15  # another method it may mean (add: POST, also PUT)
WRITE_BONUS = 0.15  # a task led by a verb of no known class (merge, fork, lock) changes something
LEAD_BONUS = 0.4  # the task's leading word is in the operation's name
SELF_BONUS = 0.15
COLLECTION_BONUS = 0.15  # plural noun, read task: a path ending in a collection, not in {id}
COVERAGE_BONUS = 0.6  # times the share of the task's words found in the name or summary
PRECISION_BONUS = 0.4  # times the share of the name's words (its verb aside) that the task asks for
COMMON_SHARE = 0.1  # a task's word in more operations than this share chooses no rows alone (see Query.fts)
MIN_ROWS_FOR_PRUNING = 2000  # a big catalog: rare words choose the rows, actions searched alone too (see `search`)


@dataclass(frozen=True, slots=True)
class Hit:
    name: str  # the tool's name
    score: float


def summary_of(tool: ToolDefinition) -> str:
    """One line saying what the operation does: its title, else the first line of its description."""
    if tool.title:
        return tool.title
    first = tool.description.strip().split("\n", 1)[0].strip()
    return first if len(first) <= 160 else first[:159].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class _Row:
    name: str
    method: str
    about_self: bool
    collection: bool  # the path ends in a literal segment, not a {parameter}
    verb: str  # the first word of the name's last part: create in repos/create-fork, list in ListUsers
    named: frozenset[str]  # rough stems of the name's words
    subject: tuple[frozenset[str], ...]  # the name's words but its verb and stopwords (each with its aliases)
    headline: frozenset[str]  # rough stems of the name and summary words, for coverage


class SearchIndex:
    """The operations of one workspace in an FTS5 table; `search` answers best first, by tool name."""

    def __init__(self, tools: Sequence[ToolDefinition]) -> None:
        self._lock = threading.Lock()
        # One private in-memory database; searches come from the event loop, building from a worker thread.
        self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute(f"CREATE VIRTUAL TABLE ops USING fts5({', '.join(COLUMNS)}, tokenize='porter unicode61')")
        rows: list[_Row] = []
        documents: list[tuple[str, ...]] = []
        for tool in tools:
            row, document = _analysed(tool)
            rows.append(row)
            documents.append(document)
        self._db.execute("BEGIN")
        placeholders = ", ".join("?" * len(COLUMNS))
        self._db.executemany(f"INSERT INTO ops({', '.join(COLUMNS)}) VALUES ({placeholders})", documents)
        self._db.execute("COMMIT")
        self._db.execute("INSERT INTO ops(ops) VALUES ('optimize')")  # one b-tree per column: faster queries
        self._rows = tuple(rows)
        self._matches: dict[str, int] = {}  # FTS5 phrase -> in how many operations
        self._verbs = frozenset(row.verb for row in self._rows)  # the API's own verbs (merge, fork, follow...)
        # Every word the re-ranking compares, sorted: the words a stem covers are one slice of it (`_covering`).
        self._vocabulary = sorted({word for row in self._rows for word in row.headline.union(*row.subject)})
        self._covered: dict[str, frozenset[str]] = {}
        self._sorted = sorted((tool.name.lower(), tool.name) for tool in tools)
        self._exact: dict[str, str] = {}
        for tool in tools:
            self._exact.setdefault(tool.name.lower(), tool.name)
            if tool.operation_id:
                self._exact.setdefault(tool.operation_id.lower(), tool.name)

    def __len__(self) -> int:
        return len(self._rows)

    def similar_names(self, name: str, limit: int = 3) -> list[str]:
        """Tool names close to a mistyped one: among the search hits for it and the names sharing its start."""
        wanted = name.strip().lower()
        start = bisect.bisect_left(self._sorted, (wanted[:4], ""))
        nearby = [real for low, real in self._sorted[start:start + 50] if low.startswith(wanted[:4])]
        candidates = dict.fromkeys([*nearby, *(hit.name for hit in self.search(name, 20))])
        matcher = difflib.SequenceMatcher(b=wanted)
        scored = []
        for candidate in candidates:
            matcher.set_seq1(candidate.lower())
            scored.append((matcher.ratio(), candidate))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [candidate for ratio, candidate in scored[:limit] if ratio >= 0.6]

    def search(self, text: str, limit: int = 10) -> list[Hit]:
        """The operations that best fit a task phrased in words, best first (at most `limit`).

        A query that is exactly a tool name or operationId puts that tool first."""
        if limit < 1:
            return []
        query = analyse(text)
        hits: list[Hit] = []
        if query.terms:
            with self._lock:
                big = len(self._rows) >= MIN_ROWS_FOR_PRUNING
                matches, common = (self._count, int(len(self._rows) * COMMON_SHARE)) if big else (None, 0)
                expression = query.fts(matches, common)
                scores = self._candidates(expression, "", WEIGHTS) if expression else {}
                if expression and big and query.groups:
                    # What the operation does, alone: in a big API, bm25 over whole documents can bury a short,
                    # exact action (CreateUser) under thousands that repeat the words in names and summaries
                    # (users.CreateApprovals: "Create new navigation property to approvals for users").
                    for index, score in self._candidates(query.pairs(), "{action} : ", ACTION_WEIGHTS).items():
                        scores.setdefault(index, score)
                # The words each of the task's words covers, once per query rather than once per candidate.
                groups = [frozenset().union(*(self._covering(_stem(word)) for word in group)) for group in query.groups]
            wanted = frozenset().union(*groups)
            best = max(scores.values(), default=1.0) or 1.0
            ranked = sorted(((self._rerank(self._rows[index], score / best, query, groups, wanted), index)
                             for index, score in scores.items()), key=lambda item: (-item[0], item[1]))
            hits = [Hit(self._rows[index].name, score) for score, index in ranked]
        exact = self._exact.get(text.strip().lower())
        if exact is not None:
            hits = [Hit(exact, float("inf")), *(hit for hit in hits if hit.name != exact)]
        return hits[:limit]

    def _candidates(self, expression: str, columns: str, weights: tuple[float, ...]) -> dict[int, float]:
        """bm25's best CANDIDATES for the expression, in `columns` only if given (row index -> score, higher better)."""
        rows = self._db.execute(
            f"SELECT rowid, bm25(ops, {', '.join(map(str, weights))}) FROM ops WHERE ops MATCH ? ORDER BY 2 LIMIT ?",
            (f"{columns}({expression})" if columns else expression, CANDIDATES),
        ).fetchall()
        return {rowid - 1: -bm25 for rowid, bm25 in rows}

    def _count(self, phrase: str) -> int:
        """In how many operations a query phrase is (called under the lock; big catalogs only).

        FTS5 scores every row a query matches, and common words match thousands in a big API ("user" is in
        6,000 of Microsoft Graph beta's 22,361): most of a search's time. Small catalogs are fast anyway."""
        found = self._matches.get(phrase)
        if found is None:
            found = self._db.execute("SELECT count(*) FROM ops WHERE ops MATCH ?", (phrase,)).fetchone()[0]
            if len(self._matches) < 100_000:
                self._matches[phrase] = found
        return found

    def _lead(self, row: _Row, lead: str | None) -> float:
        """The bonus for fitting the task's leading word, when that word is a verb (a known one, or the API's)."""
        if lead is None:
            return 0.0
        verb = VERBS.get(lead)
        if verb is not None:
            return LEAD_BONUS if row.verb == lead or row.verb in verb.canonical else 0.0
        if lead not in self._verbs:
            return 0.0  # a noun first ("dependabot alerts"): nothing to say about the action
        bonus = WRITE_BONUS if row.method != "GET" else 0.0  # merge, fork, lock...: verbs that change things
        stem = _stem(lead)
        if row.verb == lead:
            return bonus + LEAD_BONUS
        if any(word.startswith(stem) for word in row.named):
            return bonus + LEAD_BONUS / 2
        return bonus

    def _covering(self, stem: str) -> frozenset[str]:
        """The index's words the stem covers: itself, and (4 letters or more) the words it starts (review ->
        reviewers, assign -> assignees). Called under the lock."""
        covered = self._covered.get(stem)
        if covered is None:
            if len(stem) < 4:
                covered = frozenset((stem,))
            else:
                start = bisect.bisect_left(self._vocabulary, stem)
                end = bisect.bisect_left(self._vocabulary, stem + "\U0010ffff", start)
                covered = frozenset(self._vocabulary[start:end])
            if len(self._covered) < 100_000:
                self._covered[stem] = covered
        return covered

    def _rerank(self, row: _Row, relevance: float, query: Query, groups: list[frozenset[str]],
                wanted: frozenset[str]) -> float:
        """bm25 relative to the best candidate's, plus a bonus for each sign bm25 cannot see. `groups`: the
        words each word of the task covers; `wanted`: all of them."""
        bonus = self._lead(row, query.lead)
        if query.methods:
            if row.method == query.methods[0]:
                bonus += PRIMARY_METHOD_BONUS
            elif row.method in query.methods:
                bonus += OTHER_METHOD_BONUS
        if query.about_self and row.about_self:
            bonus += SELF_BONUS
        if query.plural and row.collection and query.methods[:1] == ("GET",):
            bonus += COLLECTION_BONUS
        if groups:
            covered = sum(1 for words in groups if not row.headline.isdisjoint(words))
            bonus += COVERAGE_BONUS * covered / len(groups)
            if row.subject:
                asked = sum(1 for words in row.subject if not words.isdisjoint(wanted))
                bonus += PRECISION_BONUS * asked / len(row.subject)
        return relevance * LEXICAL_WEIGHT + bonus


def _analysed(tool: ToolDefinition) -> tuple[_Row, tuple[str, ...]]:
    """The operation's re-ranking features and its FTS5 columns, from one pass over its words."""
    names = identifier_words(tool.name)
    own = identifier_words(tool.operation_id) if tool.operation_id else names
    if own != names:  # a rename: both names find it
        names = names + own
    last = (tool.operation_id or tool.name).replace(".", "/").rsplit("/", 1)[-1]
    verb_words = identifier_words(last)
    verb = verb_words[0] if verb_words else ""
    summary = summary_of(tool)
    description = tool.description
    if description.startswith(summary):
        description = description[len(summary):]
    path_words = text_words(tool.operation.path)
    name_text = " ".join(with_aliases(names))
    summary_text = " ".join(with_aliases(text_words(summary)))
    named = frozenset(_stem(word) for word in name_text.split())
    row = _Row(
        name=tool.name,
        method=tool.operation.method,
        about_self="authenticated" in own or "me" in own or "me" in path_words
        or tool.operation.path.startswith("/user/"),
        collection=not tool.operation.path.endswith("}"),
        verb=verb,
        named=named,
        subject=tuple(frozenset(_stem(alias) for alias in (word, *ALIASES.get(word, ())))
                      for word in dict.fromkeys(own) if word != verb and word not in STOPWORDS and len(word) > 1),
        headline=named | frozenset(_stem(word) for word in summary_text.split()),
    )
    document = (
        " ".join(with_aliases(verb_words)),
        name_text,
        summary_text,
        " ".join(with_aliases([word for tag in tool.tags for word in text_words(tag)])),
        " ".join(with_aliases(path_words)),
        description[:MAX_DESCRIPTION_CHARS],  # prose: FTS5's own tokenizer splits it, no aliases needed
    )
    return row, document


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A rough stem for the re-ranking checks (FTS5's porter stemmer does the matching itself)."""
    for suffix in ("ies", "sses", "ches", "shes", "xes", "s", "ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            stem = word[: -len(suffix)] + {"ies": "y", "sses": "ss", "ches": "ch", "shes": "sh", "xes": "x"}.get(
                suffix, "")
            if suffix in ("ing", "ed") and len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                stem = stem[:-1]  # starred -> star, running -> run
            return stem
    return word


# Indexes still held by a snapshot, by fingerprint: while a reload builds the next snapshot the current
# one still holds its index, so an unchanged catalog is found here; once no snapshot holds it, it goes.
_live: weakref.WeakValueDictionary[str, SearchIndex] = weakref.WeakValueDictionary()
_live_lock = threading.Lock()


def index_for(tools: Sequence[ToolDefinition]) -> SearchIndex:
    """The index of these tools, shared with a live snapshot's whose tools read the same: a reload of an
    unchanged spec costs a fingerprint of the indexed text, not a rebuild."""
    digest = hashlib.sha256()
    for tool in tools:
        for part in (tool.name, tool.operation_id or "", tool.operation.method, tool.operation.path,
                     tool.title or "", tool.description, *tool.tags):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x1f")
        digest.update(b"\x1e")
    key = digest.hexdigest()
    with _live_lock:
        live = _live.get(key)
    if live is not None:
        return live
    built = SearchIndex(tools)
    with _live_lock:
        return _live.setdefault(key, built)
