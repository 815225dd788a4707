"""What a person or an API client sees when something goes wrong: one clear line, never a stack trace or a secret.

``fail`` makes the ``gr.Error`` every check raises; ``guard`` wraps a handler so that an unexpected exception is
logged in full on the server and reaches the client as one line naming what failed; ``redact`` removes Hub tokens
(``$HF_TOKEN``, the token huggingface_hub has stored, anything shaped like ``hf_...``) from text that leaves the
server: error messages, warnings, the page's status line.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

import gradio as gr

from vitattn.secrets import redact

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)

SHOWN_CHARS = 80  # of a bad input echoed back in a message
MESSAGE_CHARS = 400  # of an unexpected error's own message


def brief(value: object) -> str:
    """The ``repr`` of a (possibly huge or hostile) input, cut to ``SHOWN_CHARS`` for a message."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 5] + "...'" + f" ({len(text)} chars)"


def fail(message: str) -> gr.Error:
    """The error shown to a person on the page and raised to an API client (tokens redacted)."""
    return gr.Error(redact(message), print_exception=False)


def warn(message: str) -> None:
    """A notice on the page (a toast; API clients see the result's ``source`` and ``/info``'s problems instead)."""
    gr.Warning(redact(message))


def guard(fn: F) -> F:
    """``fn``, with any exception other than ``gr.Error`` logged and turned into one clear ``gr.Error`` line.

    The app keeps serving: the error ends this request only. ``MemoryError`` is named as such, since a smaller
    image or a later retry is the remedy.
    """

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as e:
            e.message = redact(e.message)
            raise
        except MemoryError:
            log.exception("out of memory in %s", fn.__name__)
            raise fail(f"{fn.__name__}: the server ran out of memory; try a smaller image or try again later") from None
        except Exception as e:
            log.exception("unexpected error in %s", fn.__name__)
            detail = " ".join(str(e).split())[:MESSAGE_CHARS]
            raise fail(f"{fn.__name__} failed ({type(e).__name__}{': ' + detail if detail else ''})") from None

    return guarded  # type: ignore[return-value]
