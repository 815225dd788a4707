"""Pushing a store folder to a Hub dataset as one atomic commit holding only the files that are new or changed.

Unchanged files are found by comparing each local file with the remote tree of the branch head: the sha256 of
LFS/Xet files, the git blob id of regular ones (sizes first, so most unchanged files are never hashed). The
remote manifest's models that the local one lacks are kept (another machine's shard or an earlier run), so
pushing never hides what the repo already holds.

A push is one commit, so the repo never shows half a store. It is safe to repeat: a push that failed part-way
(the Hub down, a dropped connection, a commit whose answer was lost) is completed by the next one, which sends
only what the repo still lacks. Network errors and 5xx answers are retried a few times here; when they persist,
`PushError` says at which step and what to do. A commit racing another push (412) is retried on the new head.
The token is huggingface_hub's (``HF_TOKEN`` or the stored login) and never appears in a message.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from vitattn.secrets import redact
from vitattn.store.card import render_card
from vitattn.store.layout import CARD, MANIFEST, StoreError, is_store_file
from vitattn.store.manifest import merge_models, parse_manifest

TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
TIMEOUT = 60.0  # seconds for the repo info request (the client's other requests use its session's settings)


class PushError(StoreError):
    """A push that did not complete: the message names the step, the Hub's answer, and what to do."""


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    commit: str | None  # the new commit, or None when the repo already held every file
    uploaded: tuple[str, ...]  # paths sent in the commit
    unchanged: int  # local files the repo already held


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _same(remote, data: bytes | None, path: Path) -> bool:
    """Whether the remote file (a ``RepoFile`` or None) holds the local content (``data``, else the file)."""
    if remote is None:
        return False
    size = len(data) if data is not None else path.stat().st_size
    if remote.size != size:
        return False
    data = data if data is not None else path.read_bytes()
    if remote.lfs is not None:
        return remote.lfs.sha256 == hashlib.sha256(data).hexdigest()
    return remote.blob_id == git_blob_id(data)


def local_files(folder: Path) -> dict[str, Path]:
    """The store's files in ``folder`` (temporary and foreign files left out)."""
    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    return {rel: p for rel, p in files.items() if is_store_file(rel)}


def push(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    message: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    retries: int = 3,
    retry_wait: float = 2.0,
) -> PushResult:
    """Pushes the store in ``folder`` to the dataset ``repo_id`` (created if needed) as one commit.

    Args:
        retries: tries in all when the Hub is unreachable or answers 5xx (or another push lands first).
        retry_wait: seconds before the second try, doubled before each further one.

    Raises:
        StoreError: ``folder`` holds no store, or the repo holds a store of another image set.
        PushError: the Hub refused the push or could not be reached; nothing half-done is visible in the repo.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    files = local_files(folder)
    if MANIFEST not in files:
        raise StoreError(f"{folder}: no manifest.json to push; run python -m precompute first")
    local_manifest, _, _ = parse_manifest(files[MANIFEST].read_bytes(), str(folder))
    attempt = _Attempt(HfApi(endpoint=endpoint, token=token), repo_id, files, local_manifest)
    error: Exception | None = None
    for n in range(max(1, retries)):
        if n:
            time.sleep(retry_wait * 2 ** (n - 1))
        try:
            return attempt.run(private, message)
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001 - sorted below: retried, or turned into a PushError
            error = e
            if not (_status(e) == 412 or _transient(e)):
                break
    raise PushError(_explain(error, attempt, folder, token)) from None


class _Attempt:
    """One try of a push; ``step`` says what it was doing, ``maybe_landed`` the files of a commit sent whose
    answer was lost (the next try finds out whether it landed)."""

    def __init__(self, api, repo_id: str, files: dict[str, Path], local_manifest: dict):
        self.api, self.repo_id, self.files, self.local_manifest = api, repo_id, files, local_manifest
        self.step = "starting"
        self.maybe_landed: tuple[str, ...] = ()

    def run(self, private: bool, message: str | None) -> PushResult:
        from huggingface_hub import CommitOperationAdd, RepoFile

        api, repo_id, files = self.api, self.repo_id, self.files
        self.step = "creating the repo"
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        self.step = "reading the repo"
        head = api.dataset_info(repo_id, timeout=TIMEOUT).sha
        tree = api.list_repo_tree(repo_id, recursive=True, revision=head, repo_type="dataset")
        remote = {f.path: f for f in tree if isinstance(f, RepoFile)}
        manifest = self._merged(head, MANIFEST in remote)
        contents = {MANIFEST: (json.dumps(manifest, indent=1) + "\n").encode(), CARD: render_card(manifest).encode()}
        ops = [
            CommitOperationAdd(rel, contents.get(rel, path))
            for rel, path in files.items()
            if not _same(remote.get(rel), contents.get(rel), path)
        ]
        if not ops:  # the repo holds everything: up to date, or the commit whose answer was lost did land
            unchanged = len(files) - len(self.maybe_landed)
            return PushResult(repo_id, head if self.maybe_landed else None, self.maybe_landed, unchanged)
        models = ", ".join(self.local_manifest["models"])
        title = message or f"vitattn store: {len(ops)} new or changed files ({models})"
        self.step = "uploading and committing"
        paths = tuple(op.path_in_repo for op in ops)
        try:
            info = api.create_commit(repo_id, ops, commit_message=title, repo_type="dataset", parent_commit=head)
        except Exception as e:
            if "/commit/" in _url(e):
                self.step = "committing"
                if _status(e) is None:  # sent, but no answer: it may have landed
                    self.maybe_landed = paths
            raise
        return PushResult(repo_id, info.oid, paths, len(files) - len(ops))

    def _merged(self, head: str, remote_has_manifest: bool) -> dict:
        """The local manifest plus the remote models it lacks (refused when the two hold different image sets)."""
        local = self.local_manifest
        if not remote_has_manifest:
            return local
        where = f"hf://datasets/{self.repo_id}"
        path = self.api.hf_hub_download(self.repo_id, MANIFEST, repo_type="dataset", revision=head)
        try:
            remote, _, _ = parse_manifest(Path(path).read_bytes(), where)
        except StoreError:
            return local  # the repo's manifest is damaged: this push replaces it
        merged = merge_models(remote, local, where)
        return local if merged["models"] == local["models"] else merged


def _status(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _url(error: Exception) -> str:
    for owner in (getattr(error, "response", None), error):
        try:
            return str(owner.request.url)
        except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
            continue
    return ""


def _transient(error: Exception) -> bool:
    import httpx2

    return isinstance(error, (httpx2.TransportError, ConnectionError, TimeoutError)) or (
        _status(error) in TRANSIENT_STATUS
    )


def _explain(error: Exception | None, attempt: _Attempt, folder: Path, token: str | bool | None) -> str:
    """What failed, in words, without the token: the step, the Hub's answer, whether anything landed, what to do."""
    status = _status(error)
    if status is not None:
        detail = getattr(error, "server_message", None) or str(error).splitlines()[0]
        reason = f"the Hub answered HTTP {status} ({' '.join(str(detail).split())[:200]})"
    else:
        reason = f"the Hub could not be reached ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
    if attempt.maybe_landed:
        landed = "The commit was sent but its answer was lost; it may have landed."
    else:
        landed = "Nothing was committed."
    hint = ""
    if status in (401, 403):
        hint = f" Check that HF_TOKEN (or `hf auth login`) gives write access to {attempt.repo_id}."
    text = (
        f"push to hf://datasets/{attempt.repo_id} failed while {attempt.step}: {reason}. {landed}{hint} The store in "
        f"{folder} is complete: run the same command again to push it (files already on the Hub are not sent again)."
    )
    return redact(text, token)
