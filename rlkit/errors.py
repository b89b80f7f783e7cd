"""User errors: one line, the bad value, what is accepted; the CLI prints them and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

ECHO_LIMIT = 80  # characters of a user's value that an error quotes


class UserError(Exception):
    """A mistake in the user's input. The CLI prints `rlkit: <message>` and exits with code 2."""


class Diverged(UserError):
    """Learning produced a non-finite number: a metric, a TD error, the agent's state.

    Raised where it is seen (the logger, a checkpoint about to be written, an agent's own
    check); the run (`rlkit.training`) turns it into one line that names the step, what
    went non-finite, the settings most likely at fault and the last good checkpoint.
    Nothing non-finite is written: not the metric row, not the checkpoint.
    """

    def __init__(self, what: str, step: int) -> None:
        super().__init__(f"training diverged at step {step}: {what}")
        self.what = what
        self.step = step


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """`value` as an error quotes it: on one line, cut to `limit` characters with '...'."""
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    if len(name) > 2 * ECHO_LIMIT:  # nothing is close, and difflib would take its time
        return ""
    options = list(choices)
    lowered = {choice.lower(): choice for choice in options}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def describe_exception(error: BaseException) -> str:
    """`Type: first line (file.py line N)` of an exception raised by someone else's code
    (a plugin module, an env constructor), for a one-line error that still says where."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {shorten(lines[0], 200)}" if lines else type(error).__name__
    traceback = error.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    if traceback is not None:
        code = traceback.tb_frame.f_code
        text += f" ({shorten(code.co_filename, 120)} line {traceback.tb_lineno})"
    return text
