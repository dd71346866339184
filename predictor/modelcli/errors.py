"""The one error a ``servekit-model`` command raises for a refusal: its message says why."""

from __future__ import annotations


class CommandError(Exception):
    """The command cannot do what was asked; the message names the file or value and the reason.
    ``main`` prints it as ``servekit-model: error: ...`` and exits with 2."""
