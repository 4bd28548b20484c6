"""Reading cast.yaml: plain data plus the line and column of every key and value (a `SourceMap` by path).

YAML syntax errors and duplicate keys become positioned messages, reported with everything else.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

__all__ = ["Loc", "ParsedSource", "Position", "SourceMap", "SyntaxProblem", "parse_yaml"]

Loc = tuple[str | int, ...]  # a place in the data: mapping keys and list indexes from the root
Position = tuple[int, int]  # line, column; both count from 1
MAX_VALUES = 100_000


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    column: int
    message: str


@dataclass
class SourceMap:
    """Where each path's key and value start in the file."""

    keys: dict[Loc, Position] = field(default_factory=dict)
    values: dict[Loc, Position] = field(default_factory=dict)

    def locate(self, path: Loc, *, key: bool = False) -> Position:
        """The value's position when it starts on its key's line (scalars, flow collections), else the key's.

        A path that is not in the file (a missing key, a default) falls back to its nearest parent.
        """
        for end in range(len(path), 0, -1):
            prefix = path[:end]
            key_pos, value_pos = self.keys.get(prefix), self.values.get(prefix)
            if key_pos is None:
                if value_pos is None:
                    continue
                return value_pos
            if key or end < len(path) or value_pos is None or value_pos[0] != key_pos[0]:
                return key_pos
            return value_pos
        return (1, 1)


@dataclass
class ParsedSource:
    data: Any
    positions: SourceMap
    problems: list[SyntaxProblem]


def parse_yaml(text: str) -> ParsedSource:
    """Parse YAML text; on a syntax error `data` is None and `problems` says where and why."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True  # reported below, all of them, with both positions
    try:
        tree = yaml.load(text)
        root = YAML(typ="rt").compose(text)
    except MarkedYAMLError as exc:
        return ParsedSource(None, SourceMap(), [_syntax_problem(exc, text)])
    except YAMLError as exc:
        return ParsedSource(None, SourceMap(), [SyntaxProblem(1, 1, f"YAML error: {exc}")])
    positions = SourceMap()
    try:
        data = _Converter(positions).plain(tree, ())
    except _TooLarge as exc:
        return ParsedSource(None, SourceMap(), [SyntaxProblem(1, 1, str(exc))])
    return ParsedSource(data, positions, _duplicate_keys(root))


def _syntax_problem(exc: MarkedYAMLError, text: str) -> SyntaxProblem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = exc.problem or ""
    lines = text.splitlines()
    at = lines[line - 1] if 0 < line <= len(lines) else ""
    if "'\\t'" in problem:
        if at[: column - 1].strip() == "":
            return SyntaxProblem(line, column, "tab character in indentation: YAML indents with spaces only")
        return SyntaxProblem(line, column, "tab character here: YAML allows tabs only inside quoted text")
    context = exc.context_mark
    if "<stream end>" in problem and exc.context and context is not None:
        # "got the end of the file" is useless at the end of the file; point where the unclosed thing starts
        problem = problem.replace("'<stream end>'", "the end of the file")
        return SyntaxProblem(context.line + 1, context.column + 1,
                             f"YAML syntax error: {problem} ({exc.context} that starts here)")
    message = f"YAML syntax error: {problem}"
    if exc.context and context is not None and (context.line + 1, context.column + 1) != (line, column):
        message += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
    if problem == "mapping values are not allowed here":
        message += "; check the indentation, or quote a value that contains ': '"
    return SyntaxProblem(line, column, message)


def _key_text(key: Hashable) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


class _TooLarge(Exception):
    pass


class _Converter:
    """ruamel's round-trip objects -> dicts, lists and plain scalars, recording positions on the way.

    Anchors and aliases are allowed (sharing an auth block is handy), but an alias that contains
    itself, or aliases that multiply into a huge document, stop the conversion.
    """

    def __init__(self, positions: SourceMap) -> None:
        self.positions = positions
        self.budget = MAX_VALUES
        self.open: set[int] = set()  # ids of the collections being converted (the current path)

    def plain(self, node: Any, path: Loc) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge(f"the document expands to more than {MAX_VALUES} values (aliases repeating aliases?)")
        if not isinstance(node, CommentedMap | CommentedSeq):
            return _scalar(node)
        if id(node) in self.open:
            raise _TooLarge("an alias refers to a mapping or list that contains it")
        self.open.add(id(node))
        try:
            return self._mapping(node, path) if isinstance(node, CommentedMap) else self._sequence(node, path)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: CommentedMap, path: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for raw_key, value in node.items():
            key = _key_text(raw_key)
            child = (*path, key)
            try:
                key_line, key_column = node.lc.key(raw_key)
                value_line, value_column = node.lc.value(raw_key)
            except (KeyError, TypeError):  # keys brought in by a `<<` merge have no position of their own
                pass
            else:
                self.positions.keys.setdefault(child, (key_line + 1, key_column + 1))
                if value is not None:
                    self.positions.values.setdefault(child, (value_line + 1, value_column + 1))
            result[key] = self.plain(value, child)
        return result

    def _sequence(self, node: CommentedSeq, path: Loc) -> list[Any]:
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            try:
                line, column = node.lc.item(index)
            except (KeyError, TypeError, IndexError):
                pass
            else:
                self.positions.values.setdefault(child, (line + 1, column + 1))
            items.append(self.plain(value, child))
        return items


def _scalar(node: Any) -> Any:
    if isinstance(node, bool) or node is None:
        return node
    for kind in (str, int, float):  # ruamel's ScalarFloat, LiteralScalarString, ... -> the plain type
        if isinstance(node, kind):
            return kind(node)
    return node


def _duplicate_keys(node: Node | None) -> list[SyntaxProblem]:
    problems: list[SyntaxProblem] = []
    pending = [node] if node is not None else []
    seen_nodes: set[int] = set()  # an alias shares its node: visit each once, and never loop
    while pending:
        current = pending.pop()
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, MappingNode):
            seen: dict[str, Node] = {}
            for key_node, value_node in current.value:
                pending.append(value_node)
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node.value, str):
                    continue
                first = seen.get(key_node.value)
                if first is None:
                    seen[key_node.value] = key_node
                    continue
                mark = key_node.start_mark
                problems.append(
                    SyntaxProblem(
                        mark.line + 1,
                        mark.column + 1,
                        f"duplicate key '{key_node.value}' (first defined at line {first.start_mark.line + 1}); "
                        "only one can apply: remove or rename one",
                    )
                )
        elif isinstance(current, SequenceNode):
            pending.extend(current.value)
    return sorted(problems, key=lambda p: (p.line, p.column))
