"""Pushing a store folder to a Hub dataset as one atomic commit holding only the files that are new or changed.

Unchanged files are found by comparing each local file with the remote tree of the branch head: the sha256 of
LFS/Xet files, the git blob id of regular ones (sizes first, so most unchanged files are never hashed). The
remote manifest's models that the local one lacks are kept (another machine's shard or an earlier run), so
pushing never hides what the repo already holds. A commit racing another push (412) is retried on the new head.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from vitattn.store.card import render_card
from vitattn.store.layout import CARD, MANIFEST, StoreError, is_store_file
from vitattn.store.manifest import parse_manifest


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
) -> PushResult:
    """Pushes the store in ``folder`` to the dataset ``repo_id`` (created if needed) as one commit.

    Raises:
        StoreError: ``folder`` holds no store, or the repo holds a store of another image set.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, RepoFile
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    files = local_files(folder)
    if MANIFEST not in files:
        raise StoreError(f"{folder}: no manifest.json to push; run python -m precompute first")
    local_manifest, _, _ = parse_manifest(files[MANIFEST].read_bytes(), str(folder))
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    for attempt in range(retries):
        head = api.dataset_info(repo_id).sha
        tree = api.list_repo_tree(repo_id, recursive=True, revision=head, repo_type="dataset")
        remote = {f.path: f for f in tree if isinstance(f, RepoFile)}
        manifest = _merged(api, repo_id, head, local_manifest, MANIFEST in remote)
        contents = {MANIFEST: (json.dumps(manifest, indent=1) + "\n").encode(), CARD: render_card(manifest).encode()}
        ops = [
            CommitOperationAdd(rel, contents.get(rel, path))
            for rel, path in files.items()
            if not _same(remote.get(rel), contents.get(rel), path)
        ]
        if not ops:
            return PushResult(repo_id, None, (), len(files))
        models = ", ".join(local_manifest["models"])
        title = message or f"vitattn store: {len(ops)} new or changed files ({models})"
        try:
            info = api.create_commit(repo_id, ops, commit_message=title, repo_type="dataset", parent_commit=head)
        except HfHubHTTPError as e:
            if e.response is not None and e.response.status_code == 412 and attempt + 1 < retries:
                continue  # another push landed first: compare against the new head
            raise
        return PushResult(repo_id, info.oid, tuple(op.path_in_repo for op in ops), len(files) - len(ops))
    raise AssertionError("unreachable")


def _merged(api, repo_id: str, head: str, local: dict, remote_has_manifest: bool) -> dict:
    """The local manifest plus the remote models it lacks (refused when the two hold different image sets)."""
    from vitattn.store.manifest import merge_models

    if not remote_has_manifest:
        return local
    path = api.hf_hub_download(repo_id, MANIFEST, repo_type="dataset", revision=head)
    remote, _, _ = parse_manifest(Path(path).read_bytes(), f"hf://datasets/{repo_id}")
    merged = merge_models(remote, local, f"hf://datasets/{repo_id}")
    return local if merged["models"] == local["models"] else merged
