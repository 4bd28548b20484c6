"""JSON Schema `pattern`s as ECMA-262 regular expressions in `u` mode, the dialect JSON Schema names.

A valid pattern is kept, a Java/Python/PCRE spelling with an exact equivalent rewritten, the rest dropped
(None); `regress` also matches argument values, so calls are checked the way clients check them.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import regress
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

__all__ = ["EcmaValidator", "compiled", "ecma_pattern", "is_ecma", "search", "unmatched_names"]

# Characters ECMA-262 `u` mode allows after a backslash as themselves.
_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
# Escapes with a meaning in both dialects, kept as they are (`\1`..`\9`, `\c`, `\x`, `\u`, `\k` too).
_KEPT_ESCAPES = frozenset("dDwWsSbBfnrtv0123456789cxuk")
_POSIX = {  # Java `\p{Name}` / POSIX `[:name:]` classes, as the ASCII ranges they stand for
    "alnum": "A-Za-z0-9",
    "alpha": "A-Za-z",
    "digit": "0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "xdigit": "0-9A-Fa-f",
    "space": " \\t\\n\\x0B\\f\\r",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1F\\x7F",
    "punct": "!-\\/:-@\\[-`{-~",
    "graph": "!-~",
    "print": " -~",
    "word": "\\w",
}
_JAVA_PREFIXES = ("Is", "In")
_LOOKAROUNDS = ("(?=", "(?!", "(?<=", "(?<!")
_SET_ESCAPES = frozenset("dDwWsSpP")


class _Untranslatable(Exception):
    """A construct with no safe ECMA-262 spelling (inline flags, atomic groups, Java-only escapes)."""


def is_ecma(pattern: str) -> bool:
    """True when `pattern` compiles as an ECMA-262 regular expression with the `u` flag."""
    return compiled(pattern) is not None


@lru_cache(maxsize=4096)
def compiled(pattern: str) -> regress.Regex | None:
    try:
        return regress.Regex(pattern, "u")
    except (regress.RegressError, ValueError):  # a syntax problem; ValueError: a lone surrogate
        return None


def search(pattern: str, text: str) -> bool:
    """ECMA-262 `RegExp(pattern, "u").test(text)`; False for a pattern that does not compile."""
    regex = compiled(pattern)
    return regex is not None and regex.find(text) is not None


@lru_cache(maxsize=4096)
def ecma_pattern(pattern: str) -> str | None:
    """`pattern` as a valid ECMA-262 `u`-mode regex: itself, an exact translation, or None."""
    if is_ecma(pattern) and not _has_modifier_group(pattern):
        return pattern
    try:
        translated = _translate(pattern)
    except _Untranslatable:
        return None
    return translated if is_ecma(translated) and not _has_modifier_group(translated) else None


def _has_modifier_group(pattern: str) -> bool:
    """`(?i:...)` groups are ES2025: engines in use today (Node 20, older browsers) reject them."""
    index = pattern.find("(?")
    while index != -1:
        if index == 0 or pattern[index - 1] != "\\":
            following = pattern[index + 2 : index + 3]
            if following.isalpha() or following == "-":
                return True
        index = pattern.find("(?", index + 1)
    return False


def _translate(pattern: str) -> str:
    out: list[str] = []
    groups: list[tuple[int, bool]] = []  # open groups: (index in `out`, is a lookaround)
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            text, i = _escape(pattern, i, in_class=False)
            out.append(text)
        elif char == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
        elif char == "(":
            text, i = _group_open(pattern, i)
            if text.startswith("\\k<"):
                out.append(text)
                continue
            groups.append((len(out), text in _LOOKAROUNDS))
            out.append(text)
        elif char == ")":
            if not groups:
                raise _Untranslatable
            opened, lookaround = groups.pop()
            out.append(")")
            i += 1
            if lookaround:
                i = _assertion_quantifier(pattern, i, out, opened)
        elif char == "{":
            end = _quantifier_end(pattern, i)
            if end is None:
                out.append("\\{")
                i += 1
            else:
                out.append(pattern[i:end])
                i = end
                if i < n and pattern[i] == "+":  # possessive: no ECMA-262 form
                    raise _Untranslatable
        elif char in "}]":
            out.append("\\" + char)
            i += 1
        elif char in "*+?":
            out.append(char)
            i += 1
            if i < n and pattern[i] == "+":
                raise _Untranslatable
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _assertion_quantifier(pattern: str, i: int, out: list[str], opened: int) -> int:
    """A quantified lookaround (Annex B, refused in `u` mode): `(?!x)+` is `(?!x)`, `(?!x)*` is nothing."""
    minimum: int | None = None
    end = i
    if pattern[i : i + 1] in ("*", "?"):
        minimum, end = 0, i + 1
    elif pattern[i : i + 1] == "+":
        minimum, end = 1, i + 1
    elif pattern[i : i + 1] == "{":
        close = _quantifier_end(pattern, i)
        if close is not None:
            minimum, end = int(pattern[i + 1 : close - 1].partition(",")[0]), close
    if minimum is None:
        return i
    if pattern[end : end + 1] == "?":  # lazy
        end += 1
    if minimum == 0:
        del out[opened:]
    return end


def _quantifier_end(pattern: str, start: int) -> int | None:
    """End of a `{n}`, `{n,}` or `{n,m}` quantifier at `start`, or None when `{` is a literal."""
    close = pattern.find("}", start)
    if close == -1:
        return None
    low, comma, high = pattern[start + 1 : close].partition(",")
    if low.isdigit() and (not high or high.isdigit()):
        return close + 1
    if not low and comma and high.isdigit():  # `{,m}` (Python, PCRE 10.43): zero to m
        raise _Untranslatable
    return None


def _group_open(pattern: str, i: int) -> tuple[str, int]:
    """The opening of the group at `pattern[i]` in ECMA-262 form, and the index after it."""
    for opener in (*_LOOKAROUNDS, "(?:", "(?<"):
        if pattern.startswith(opener, i):
            return opener, i + len(opener)  # `(?<` left over is a named group: the name follows as written
    if pattern.startswith("(?P<", i):  # Python named group
        return "(?<", i + 4
    if pattern.startswith("(?P=", i):  # Python named backreference
        close = pattern.find(")", i)
        if close == -1:
            raise _Untranslatable
        return f"\\k<{pattern[i + 4 : close]}>", close + 1
    if pattern.startswith("(?", i):
        raise _Untranslatable  # inline flags, atomic groups, comments, conditionals
    return "(", i + 1


def _escape(pattern: str, i: int, *, in_class: bool) -> tuple[str, int]:
    """The escape at `pattern[i]` (a backslash) in ECMA-262 form, and the index after it."""
    if i + 1 >= len(pattern):
        raise _Untranslatable
    char = pattern[i + 1]
    if char in "pP":
        return _property(pattern, i, in_class=in_class)
    if char in _SYNTAX or char in _KEPT_ESCAPES or (in_class and char == "-"):
        return pattern[i : i + 2], i + 2
    if not in_class and char == "A":
        return "^", i + 2
    if not in_class and char in "Zz":
        return "$", i + 2
    if char.isascii() and char.isalnum():
        raise _Untranslatable  # `\e`, `\h`, `\R`, `\Q`...: meanings ECMA-262 does not share
    # An identity escape (`\_`, `\#`, `\:`, `\~`): the character itself.
    return ("\\^" if in_class and char == "^" else char), i + 2


def _property(pattern: str, i: int, *, in_class: bool) -> tuple[str, int]:
    negated = pattern[i + 1] == "P"
    if pattern[i + 2 : i + 3] != "{":
        raise _Untranslatable
    close = pattern.find("}", i)
    if close == -1:
        raise _Untranslatable
    name = pattern[i + 3 : close]
    end = close + 1
    if is_ecma(f"\\p{{{name}}}"):
        return pattern[i:end], end
    ranges = _POSIX.get(name.lower())
    if ranges is None and name.startswith(_JAVA_PREFIXES):
        bare = name[2:]
        if is_ecma(f"\\p{{{bare}}}"):
            return f"\\{'P' if negated else 'p'}{{{bare}}}", end
        if name.startswith("Is") and is_ecma(f"\\p{{Script={bare}}}"):
            return f"\\{'P' if negated else 'p'}{{Script={bare}}}", end
        ranges = _POSIX.get(bare.lower())
    if ranges is None:
        raise _Untranslatable
    if in_class:
        if negated:
            raise _Untranslatable  # a negated set inside a class has no plain-range form
        return ranges, end
    return f"[{'^' if negated else ''}{ranges}]", end


def _char_class(pattern: str, start: int) -> tuple[str, int]:
    """A `[...]` class in ECMA-262 `u` form: identity escapes unescaped, `-` after a class escape escaped."""
    out = ["["]
    i, n = start + 1, len(pattern)
    if i < n and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    previous_was_set = False  # the last atom was \d, \w, \p{..}: a following `-` is a literal
    while i < n:
        char = pattern[i]
        if char == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        if char == "]":  # `[]...]` in Java/POSIX: a literal `]` first
            out.append("\\]")
            i += 1
        elif char == "[" and pattern.startswith("[:", i):
            close = pattern.find(":]", i)
            name = pattern[i + 2 : close] if close != -1 else ""
            ranges = _POSIX.get(name)
            if ranges is None:
                raise _Untranslatable
            out.append(ranges)
            i = close + 2
            previous_was_set = True
        elif char == "[" or (char == "&" and pattern.startswith("&&", i)):
            raise _Untranslatable  # Java union/intersection
        elif char == "\\":
            text, i = _escape(pattern, i, in_class=True)
            if text == "-":
                text = "\\-"
            out.append(text)
            previous_was_set = text[:2] in ("\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\p", "\\P") or (
                len(text) > 2 and not text.startswith("\\")
            )
        elif char == "-" and (previous_was_set or _set_follows(pattern, i + 1)) and pattern[i + 1 : i + 2] != "]":
            out.append("\\-")
            i += 1
            previous_was_set = False
        else:
            out.append(char)
            i += 1
            previous_was_set = False
        first = False
    raise _Untranslatable  # no closing `]`


def _set_follows(pattern: str, i: int) -> bool:
    """True when a class escape (`\\d`, `\\w`, `\\p{..}`, `[:name:]`) starts at `i`."""
    if pattern.startswith("[:", i):
        return True
    return pattern[i : i + 1] == "\\" and pattern[i + 1 : i + 2] in _SET_ESCAPES


# -- validating with ECMA-262 patterns --------------------------------------------------------------
# jsonschema matches `pattern`, `patternProperties` and the names `additionalProperties` leaves to
# itself with Python's `re`, which refuses `\p{L}` (common in AWS specs) and differs on `$`, `\d`
# and `\w`. These three keywords are swapped for ECMA-262 ones, as the JSON Schema spec asks.

def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties_keyword(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if search(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def unmatched_names(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The property names `additionalProperties` applies to: in neither `properties` nor a pattern."""
    known = schema.get("properties") or {}
    patterns = list(schema.get("patternProperties") or {})
    return [name for name in instance if name not in known and not any(search(p, name) for p in patterns)]


def _additional_properties_keyword(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = unmatched_names(instance, schema)
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif additional is False and extras:
        names = ", ".join(repr(name) for name in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({names} unexpected)")


# types-jsonschema leaves `extend` unannotated; it returns a Draft 2020-12 validator class with our keywords.
EcmaValidator: type[Draft202012Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern_keyword,
        "patternProperties": _pattern_properties_keyword,
        "additionalProperties": _additional_properties_keyword,
    },
)
