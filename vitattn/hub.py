"""How vitattn names things on the Hugging Face Hub (one grammar for repo ids and dataset locations), and a quick
check that a model's pretrained weights can be had before the Hub client spends ~50 s retrying.

``check_weights_reachable(name)`` runs before every pretrained build (`vitattn.models.build_module`: notebooks,
precompute, fine-tune, the app): it returns at once when the weights are cached, else opens a TCP connection to the
Hub (``$HF_ENDPOINT``, default huggingface.co) for at most ``HUB_PROBE_SECONDS``, and raises one line naming the
model, the file and the way out when that fails (or ``HF_HUB_OFFLINE`` is set with an empty cache).
"""

from __future__ import annotations

import os
import re
import socket

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # <namespace>/<name>
HUB_DATASET = re.compile(rf"hf://datasets/({REPO_ID.pattern})(?:@([^@\s]+))?")  # groups: repo id, revision

HUB_PROBE_SECONDS = 3.0  # to connect to the Hub before a download; the Hub client itself retries for about 50 s
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin", "open_clip_model.safetensors")
DEFAULT_WAY_OUT = (
    "use pretrained=False (the same architecture with random weights, no download), or HF_HUB_OFFLINE=1 with a "
    "Hugging Face cache that holds the file (run once with network access to fill it)"
)


class WeightsUnreachable(RuntimeError):
    """A model's pretrained weights are neither cached nor downloadable (one line: model, file, way out)."""


def hub_repo(name: str) -> tuple[str, str] | None:
    """The Hub repository and file timm downloads ``name``'s weights from (``timm/<arch>.<tag>``), if any."""
    import timm

    from vitattn.specs import get_spec

    cfg = timm.models.get_pretrained_cfg(get_spec(name).timm_id)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    return repo, getattr(cfg, "hf_hub_filename", None) or WEIGHT_FILES[0]


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the Hub (``$HF_ENDPOINT``, default huggingface.co) opens within ``timeout``;
    False at once when ``HF_HUB_OFFLINE`` is set."""
    from urllib.parse import urlsplit

    if hub_offline():
        return False
    url = urlsplit(hub_endpoint())
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
    except OSError:
        return False
    return True


def check_weights_reachable(name: str, way_out: str = DEFAULT_WAY_OUT) -> None:
    """Returns when ``name``'s pretrained weights are cached or the Hub answers; else raises `WeightsUnreachable`
    in one line naming the model, the file and ``way_out`` (instead of the Hub client's retries for about 50 s).

    Args:
        name: a key of `vitattn.MODELS`.
        way_out: what the caller can do instead (the app names its own ``--random-weights``).
    """
    found = hub_repo(name)
    if found is None:
        return
    repo, file = found
    check_files_reachable(f"the weights of {name}", repo, file, WEIGHT_FILES, way_out)


def check_files_reachable(what: str, repo: str, file: str, files: tuple[str, ...], way_out: str) -> None:
    """Returns when the cache holds one of ``files`` of ``repo`` or the Hub answers; else raises `WeightsUnreachable`
    in one line: ``what`` (e.g. "the weights of clip"), the repo and ``file``, why, and ``way_out``."""
    from huggingface_hub import try_to_load_from_cache

    if any(isinstance(try_to_load_from_cache(repo, f), str) for f in files):
        return
    if hub_offline():
        why = "HF_HUB_OFFLINE is set and the cache does not hold them"
    elif hub_reachable():
        return
    else:
        why = f"not cached and the Hub is unreachable ({hub_endpoint()}, no answer within {HUB_PROBE_SECONDS:g} s)"
    raise WeightsUnreachable(f"{what} ({repo}, {file}) are {why}; {way_out}")
