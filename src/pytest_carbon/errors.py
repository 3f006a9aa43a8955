"""The project's own error and warning types."""

from __future__ import annotations

from typing import final

import pytest


class CarbonWarning(pytest.PytestWarning):
    """A measurement degraded (counter unreadable, codecarbon failing): figures fall back."""


class CarbonError(Exception):
    """Base class of every error pytest-carbon raises on purpose."""


@final
class InputError(CarbonError):
    """A file given to pytest-carbon cannot be read: names the file, the position and the fix."""

    def __init__(
        self, path: str, message: str, *, line: int | None = None, fix: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.message = message
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The error as one line: ``path:line: message (fix)``."""
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        text = f"{where}: {message_with_stop(self.message)}"
        if self.fix:
            text += f" Fix: {message_with_stop(self.fix)}"
        return text


def message_with_stop(text: str) -> str:
    """Return ``text`` ending with a full stop."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
