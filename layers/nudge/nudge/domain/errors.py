"""The error a bad config raises: one line naming the key and the problem (exit 2 in the CLI)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value is wrong. ``str()`` is one line: ``<key>: <problem>``."""

    def __init__(self, key: str, problem: str):
        key, problem = _printable(key), _printable(problem)
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _printable(text: str) -> str:
    """One line, no terminal escapes: a key or value from the file may hold anything."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
