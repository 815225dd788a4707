"""What the command lines share: a frozen config dataclass made from parsed arguments."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

C = TypeVar("C")


def config_from(cls: type[C], args: argparse.Namespace, **derived: Any) -> C:
    """``cls(...)`` from every field ``args`` holds under the field's own name, then ``derived``: the fields the
    command line spells differently (``progress=not args.quiet``) or that need parsing (a path, JSON).

    Args:
        cls: a dataclass whose fields the arguments fill.
        args: ``parser.parse_args()``; arguments that are not fields of ``cls`` are left out.
        derived: field values that replace or add to those read from ``args``.
    """
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    given = {k: v for k, v in vars(args).items() if k in names}
    return cls(**{**given, **derived})
