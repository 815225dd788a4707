"""Prompt templates: a prompt as given, OpenAI's 80 ImageNet templates, or a list of one's own."""

from __future__ import annotations

from collections.abc import Sequence

TEMPLATE_SETS = ("imagenet80",)


def imagenet80() -> tuple[str, ...]:
    """The 80 prompt templates OpenAI used for ImageNet zero-shot (CLIP's notebook ``Prompt_Engineering_for_ImageNet``),
    as open_clip ships them (``open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES``), with ``{}`` for the class."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


def resolve(templates: str | Sequence[str] | None) -> tuple[str, ...]:
    """Template strings with one ``{}`` each; ``()`` for prompts as given.

    Raises:
        ValueError: an unknown set name, or a template without exactly one ``{}``.
    """
    if templates is None:
        return ()
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise ValueError(
                f"templates {templates!r}: expected None, {', '.join(TEMPLATE_SETS)}, or a list of strings with {{}}"
            )
        return imagenet80()
    out = tuple(templates)
    bad = [t for t in out if not isinstance(t, str) or t.count("{}") != 1]
    if not out or bad:
        raise ValueError(f"each template must be a string with exactly one {{}} for the prompt, got {bad or out!r}")
    return out


def expand(prompts: Sequence[str], templates: str | Sequence[str] | None) -> list[tuple[str, ...]]:
    """Per prompt, the texts whose embeddings are averaged: ``(prompt,)`` without templates."""
    forms = resolve(templates)
    if not forms:
        return [(p,) for p in prompts]
    return [tuple(t.replace("{}", p) for t in forms) for p in prompts]


def describe(templates: str | Sequence[str] | None) -> str | list[str]:
    """What a store's manifest records: ``"none"``, a set's name, or the list itself."""
    if templates is None:
        return "none"
    return templates if isinstance(templates, str) else list(resolve(templates))
