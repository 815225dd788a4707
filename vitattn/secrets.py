"""Hub tokens never leave the process: ``redact`` removes them from any text shown to a person or a client.

A token is whatever ``$HF_TOKEN`` (and its older names) or huggingface_hub's stored login holds, any token passed in
explicitly, and anything shaped like ``hf_...``.
"""

from __future__ import annotations

import os
import re

TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN")
TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9]{8,}")
HIDDEN = "<hidden>"


def _secrets(extra: tuple[object, ...]) -> list[str]:
    values = [os.environ.get(name, "") for name in TOKEN_VARS] + [v for v in extra if isinstance(v, str)]
    try:
        from huggingface_hub import get_token

        values.append(get_token() or "")
    except Exception:  # noqa: BLE001 - no huggingface_hub, or an unreadable token file: nothing to hide from it
        pass
    return sorted({v.strip() for v in values if len(v.strip()) >= 8}, key=len, reverse=True)


def redact(text: object, *tokens: object) -> str:
    """``text`` as a string with every Hub token in it (and each of ``tokens``) replaced by ``<hidden>``."""
    out = str(text)
    for secret in _secrets(tokens):
        out = out.replace(secret, HIDDEN)
    return TOKEN_SHAPE.sub(HIDDEN, out)
