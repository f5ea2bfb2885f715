"""RE2 (Go) regular expressions: compiled by RE2 itself, and rewritten for Python's ``re``.

Prometheus matchers and ``label_replace`` use RE2, which runs in time linear in the input: a
pattern such as ``(a+)+b`` that makes a backtracking engine (Python's ``re``) take exponential time
stays cheap. So whatever the engine matches goes through ``compile_anchored`` (the ``google-re2``
package), never through ``re``; one such match in a worker would otherwise hold the GIL, and every
other request with it, for as long as it runs.

The rewrite below keeps the matcher values pushed down to the store readable by both engines.
Python rejects flag groups such as ``(?i)`` anywhere but at the very start, and every pattern is
wrapped as ``^(?:…)$``, so ``(?i)`` would never be at the start: flag groups become scoped groups
``(?i:…)`` closing where RE2's scope ends (the enclosing group, or an alternation bar). POSIX
classes are expanded. The output is valid for both Python and RE2 (ClickHouse).
"""

from __future__ import annotations

import re
from functools import lru_cache

import re2

_FLAGS = re.compile(r"\(\?([imsU]*(?:-[imsU]*)?)\)")
_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r"\s",
    "xdigit": "0-9A-Fa-f",
    "word": r"\w",
    "punct": r"!-/:-@\[-`{-~",
    "blank": r" \t",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r" -~",
    "graph": r"!-~",
    "ascii": r"\x00-\x7f",
}
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]+):\]")
_OPTIONS = re2.Options()
_OPTIONS.dot_nl = True  # as the store's and model.labels' matching: "." matches a newline too
_OPTIONS.log_errors = False  # a bad pattern is the caller's error, not a line on stderr


@lru_cache(maxsize=1024)
def compile_anchored(pattern: str) -> re2._Regexp:
    """``pattern`` as Prometheus compiles it (``^(?:pattern)$``), in RE2; raises ``re2.error``."""
    return re2.compile(f"^(?:{pattern})$", _OPTIONS)


@lru_cache(maxsize=4096)
def to_python_regex(pattern: str) -> str:
    """The same language as RE2 ``pattern``, in Python ``re`` syntax (best effort, common cases)."""
    out: list[str] = []
    open_flags: list[list[str]] = [[]]  # per group nesting level: scoped flag groups still open
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            # RE2 \z (end of text) has no spelling both accept; "$" is the same but before a final newline.
            out.append("$" if nxt == "z" else ch + nxt)
            i += 2
        elif ch == "[":
            i = _copy_class(pattern, i, out)
        elif ch == "(":
            flags = _FLAGS.match(pattern, i)
            if flags:
                if flags.group(1).replace("-", ""):
                    out.append(f"(?{flags.group(1)}:")
                    open_flags[-1].append(out[-1])
                i = flags.end()
            else:
                out.append(ch)
                open_flags.append([])
                i += 1
        elif ch == ")":
            out.append(")" * len(open_flags.pop()) if len(open_flags) > 1 else "")
            out.append(ch)
            i += 1
        elif ch == "|":
            # RE2's flags hold to the end of the group: close them before the bar, reopen after.
            level = open_flags[-1]
            out.append(")" * len(level) + "|" + "".join(level))
            i += 1
        else:
            out.append(ch)
            i += 1
    out.append(")" * len(open_flags[0]))
    return "".join(out)


def _copy_class(pattern: str, i: int, out: list[str]) -> int:
    """Copy a bracket expression starting at ``pattern[i] == '['``; return the index after it."""
    j = i + 1
    body: list[str] = []
    if j < len(pattern) and pattern[j] == "^":
        body.append("^")
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        body.append(r"\]")
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        if pattern[j] == "\\" and j + 1 < len(pattern):
            body.append(pattern[j : j + 2])
            j += 2
            continue
        posix = _POSIX_CLASS.match(pattern, j)
        if posix and posix.group(2) in _POSIX and not posix.group(1):
            body.append(_POSIX[posix.group(2)])
            j = posix.end()
            continue
        body.append("\\[" if pattern[j] == "[" else pattern[j])
        j += 1
    out.append("[" + "".join(body) + "]")
    return j + 1
