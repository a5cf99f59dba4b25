"""AWS model ``pattern`` constraints (Java regular expressions) as Python matchers.

botocore's models carry Java regexes (``\\p{ASCII}``, ``\\p{Print}``, ``\\p{L}``, ``\\z``,
UTF-16 surrogate ranges). The POSIX classes are rewritten to their Java (ASCII) meaning and
surrogate pairs to real code-point ranges; the result is compiled with the ``regex`` module
(Unicode categories; a declared dependency), falling back to ``re`` if it is missing.
A pattern neither can compile is skipped (returns None): the server then accepts what it
cannot check rather than rejecting valid input. Java's ``matches()`` semantics: the whole
value must match.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

try:  # pragma: no cover - exercised implicitly by whichever engine is installed
    import regex as _engine

    HAS_UNICODE_CATEGORIES = True
except ImportError:  # pragma: no cover
    _engine = re  # type: ignore[assignment]
    HAS_UNICODE_CATEGORIES = False

log = logging.getLogger(__name__)

# Java's POSIX character classes (US-ASCII only unless UNICODE_CHARACTER_CLASS is set).
_POSIX: dict[str, str] = {
    "ASCII": r"\x00-\x7F",
    "Print": r"\x20-\x7E",
    "Graph": r"\x21-\x7E",
    "Alnum": r"a-zA-Z0-9",
    "Alpha": r"a-zA-Z",
    "Digit": r"0-9",
    "Lower": r"a-z",
    "Upper": r"A-Z",
    "XDigit": r"0-9a-fA-F",
    "Punct": r"!-/:-@\[-`{-~",
    "Space": r" \t\n\x0B\f\r",
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1F\x7F",
}
_PROP_RE = re.compile(r"\\([pP])\{(?:Is)?([A-Za-z_]+)\}")
_SURROGATE_RANGE = re.compile(r"\\uD800\\uDC00-\\uDBFF\\uDFFF", re.IGNORECASE)


def translate(pattern: str) -> str:
    """Rewrite Java-only syntax in ``pattern`` into Python (``regex``/``re``) syntax."""
    pattern = _SURROGATE_RANGE.sub(r"\\U00010000-\\U0010FFFF", pattern)
    out: list[str] = []
    i = 0
    depth = 0  # inside [...]
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "pP":
                match = _PROP_RE.match(pattern, i)
                if match and match.group(2) in _POSIX:
                    body = _POSIX[match.group(2)]
                    negated = match.group(1) == "P"
                    if depth:
                        if negated:  # cannot negate inside a class: leave to the engine
                            out.append(match.group(0))
                        else:
                            out.append(body)
                    else:
                        out.append(f"[^{body}]" if negated else f"[{body}]")
                    i = match.end()
                    continue
            if nxt == "z":  # Java's end of input: \Z in re and regex (regex knows \z only from 2026.2)
                out.append(r"\Z")
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=2048)
def compile_pattern(pattern: str) -> Callable[[str], object] | None:
    """A ``fullmatch`` function for the Java ``pattern``, or None if it cannot be compiled."""
    try:
        return _engine.compile(translate(pattern)).fullmatch
    except Exception as exc:  # regex/re raise different error types
        log.debug("skipping uncompilable model pattern %r: %s", pattern, exc)
        return None
