"""A comparison printed for people (text), for a pull request comment (markdown) or for programs (json).

The JSON shape is stable (docs/gitops.md); markdown escapes everything that comes from a spec or config.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import groupby
from typing import Any

from castproxy.gitops.changes import Change, Comparison

__all__ = ["markdown", "render", "sentence"]

FORMATS = ("text", "markdown", "json")
COMMENT_MARKER = "<!-- castproxy-diff -->"  # lets a workflow find and update its earlier comment
MAX_MARKDOWN_ROWS = 200  # GitHub refuses comments over 65,536 characters
_RESULT = {0: "no-changes", 1: "changes", 3: "breaking"}
_SHOWN_BEFORE_AFTER = frozenset({"description-changed", "title-changed"})


def render(comparison: Comparison, output_format: str) -> str:
    renderers: dict[str, Callable[[Comparison], str]] = {"text": text, "markdown": markdown, "json": as_json}
    return renderers[output_format](comparison)


def headline(comparison: Comparison) -> str:
    total = len(comparison.changes)
    if not total:
        return "no changes to the exposed tools"
    parts = [_count(total, "change")]
    for change_class in ("breaking", "unknown"):
        number = comparison.count(change_class)
        if number:
            parts.append(f"{number} {change_class}")
    return ", ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _clip(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence(change: Change, *, arrow: str = "->") -> str:
    """The change as one line, without its class, workspace or tool."""
    message = change.message
    if change.kind in _SHOWN_BEFORE_AFTER:
        before = json.dumps(_clip(change.before or ""), ensure_ascii=False)
        after = json.dumps(_clip(change.after or ""), ensure_ascii=False)
        message += f": {before} {arrow} {after}"
    return message


def text(comparison: Comparison) -> str:
    lines = [f"{comparison.old_label} -> {comparison.new_label}: {headline(comparison)}"]
    for workspace, changes in groupby(comparison.changes, key=lambda c: c.workspace):
        lines.append(f"workspace {workspace}")
        lines += [f"  {change.change_class:<12}  {change.tool + ': ' if change.tool else ''}{sentence(change)}"
                  for change in changes]
    lines += [f"note: {note}" for note in comparison.notes]
    return "\n".join(lines) + "\n"


def _md(text_value: str) -> str:
    """Text from a spec or config, safe inside a markdown table cell of a PR comment: inside `code`
    spans only `|` needs escaping (GFM tables); outside, HTML, links, images and @mentions are disarmed."""
    flat = " ".join(text_value.split())
    parts = flat.split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: no code spans, then
        parts = [flat.replace("`", "'")]
    return "`".join(part.replace("|", "\\|") if index % 2 else _md_plain(part) for index, part in enumerate(parts))


def _code(text_value: str) -> str:
    return "`" + " ".join(text_value.split()).replace("`", "'").replace("|", "\\|") + "`"


def _md_plain(text_value: str) -> str:
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("@", "&#64;"),
                      ("[", "\\["), ("]", "\\]"), ("!", "\\!"), ("*", "\\*"), ("_", "\\_")):
        text_value = text_value.replace(raw, safe)
    return text_value


def markdown(comparison: Comparison) -> str:
    breaking = comparison.count("breaking")
    title = headline(comparison)
    icon = "⚠️ " if breaking else ""
    lines = [
        COMMENT_MARKER,
        f"### {icon}castproxy diff: {_md(title)}",
        "",
        f"{_code(comparison.old_label)} → {_code(comparison.new_label)}",
    ]
    shown = _rows_shown(comparison.changes)
    for workspace, changes in groupby((c for i, c in enumerate(comparison.changes) if i in shown),
                                      key=lambda c: c.workspace):
        lines += ["", f"#### Workspace {_code(workspace)}", "", "| class | tool | change |", "|---|---|---|"]
        for change in changes:
            shown_class = f"**{change.change_class}**" if change.change_class == "breaking" else change.change_class
            tool = _code(change.tool) if change.tool else "—"
            lines.append(f"| {shown_class} | {tool} | {_md(sentence(change, arrow='→'))} |")
    hidden = len(comparison.changes) - len(shown)
    if hidden:
        lines += ["", f"{_count(hidden, 'more change')} not shown (a comment has a size limit; breaking changes are "
                  "shown first): run `castproxy diff` for the full list."]
    if comparison.notes:
        lines.append("")
        lines += [f"> {_md(note)}" for note in comparison.notes]
    if breaking:
        lines += ["", "Breaking: a client or model that used these tools as they were may now fail."]
    return "\n".join(lines) + "\n"


def _rows_shown(changes: tuple[Change, ...]) -> set[int]:
    """Which changes fit in a comment: all of them, or the breaking ones first, up to MAX_MARKDOWN_ROWS."""
    if len(changes) <= MAX_MARKDOWN_ROWS:
        return set(range(len(changes)))
    ranked = sorted(range(len(changes)), key=lambda i: (changes[i].change_class != "breaking", i))
    return set(ranked[:MAX_MARKDOWN_ROWS])


def change_json(change: Change) -> dict[str, Any]:
    return {
        "workspace": change.workspace,
        "tool": change.tool,
        "kind": change.kind,
        "class": change.change_class,
        "message": change.message,
        "argument": change.argument,
        "schema": change.schema,
        "before": change.before,
        "after": change.after,
    }


def as_json(comparison: Comparison) -> str:
    payload = {
        "old": comparison.old_label,
        "new": comparison.new_label,
        "result": _RESULT[comparison.exit_code],
        "exit_code": comparison.exit_code,
        "summary": {name: comparison.count(name) for name in ("breaking", "non-breaking", "unknown")},
        "changes": [change_json(change) for change in comparison.changes],
        "notes": list(comparison.notes),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
