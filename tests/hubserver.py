"""A local Hugging Face Hub for tests: a real HTTP server that the real ``huggingface_hub`` client talks to.

The Hub is unreachable from CI, so tests run ``HfApi``, ``hf_hub_download``, ``snapshot_download``, ``HfFileSystem``
and ``datasets.load_dataset`` against this server. It speaks the part of the Hub protocol those clients use
(huggingface_hub 2.4, see /work/shared/HUB_PROTOCOL.md): repo create/delete, validate-yaml, repo info, tree listings
(paged with a ``Link`` header), paths-info, commits listing, refs, preupload, NDJSON commits (``parentCommit`` checked
like the Hub: 412), git-LFS "basic" uploads, resolve GET/HEAD with ``Range`` (206), and the ``X-Error-Code`` 404s the
client maps to ``RepositoryNotFoundError`` / ``RevisionNotFoundError`` / ``RemoteEntryNotFoundError``.

Preupload answers ``"regular"`` for every file by default, so the client sends contents base64 in the commit NDJSON
and never tries Xet (which cannot work offline), with or without ``hf_xet`` installed. ``HubServer(lfs_threshold=n)``
answers ``"lfs"`` for files of ``n`` bytes or more; the client then needs ``HF_HUB_DISABLE_XET=1``.

Usage (fixtures ``hub_server`` and ``hub`` come from tests/conftest.py)::

    def test_roundtrip(hub):  # a started HubServer; this process's client points at it
        api = HfApi(endpoint=hub.url)
        api.create_repo("ns/data", repo_type="dataset")
        api.create_commit("ns/data", [CommitOperationAdd("a.parquet", data)], commit_message="add", repo_type="dataset")
        hub.clear_log()
        fs = HfFileSystem(endpoint=hub.url, block_size=64 * 1024)
        pq.ParquetFile(fs.open("datasets/ns/data/a.parquet")).read_row_group(0)
        assert hub.bytes_served("/datasets/ns/data/resolve/") < hub.repo_bytes("ns/data") / 10

Pointing a client at the server (huggingface_hub and datasets read ``HF_ENDPOINT`` once, at import):

* explicit: ``HfApi(endpoint=url)``, ``HfFileSystem(endpoint=url)``, ``hf_hub_download(..., endpoint=url,
  cache_dir=...)``, ``snapshot_download(..., endpoint=url, cache_dir=...)``;
* in-process, everything at once: ``with point_client_at(url, home):`` patches the import-time constants of
  huggingface_hub and datasets (endpoint, caches, token path) and the environment; the ``hub`` fixture does this
  (``hf_xet`` fixes its log folder from ``HF_HOME`` when first imported: let that happen inside the block);
* subprocess: ``subprocess.run(cmd, env=server.client_env(home))`` sets ``HF_ENDPOINT``/``HF_HOME`` before import.

Every request is logged (``server.log``); ``server.fail(...)`` injects faults (error answers, dropped connections,
truncated answers, stalls); ``with server.offline():`` closes the listening socket so clients get connection errors,
as when the Hub is unreachable. Sockets have TCP_NODELAY, so an answer costs no delayed-ACK wait.

Standalone: ``python tests/hubserver.py [port]`` serves until Ctrl-C.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, unquote

import yaml

USER = "test-user"  # namespace used when create_repo gets no organization, and the whoami answer
GITATTRIBUTES = b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.parquet filter=lfs diff=lfs merge=lfs -text\n"
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}  # web and resolve URLs
API_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}  # /api/{plural}/...
SAFE_SCAN = {"status": "safe", "avScan": {"virusFound": False, "virusNames": None}, "pickleImportScan": None}


def git_blob_oid(data: bytes) -> str:
    """Git's blob id, which the client compares with preupload's ``oid`` to skip unchanged regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------------- storage


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class FileRef:
    """A file of a snapshot: its content's sha256 (the blob store key), size, git oid and storage kind."""

    sha256: str
    size: int
    oid: str  # git blob oid of the content (regular file) or of the LFS pointer (LFS file), as the Hub reports it
    lfs: bool

    @classmethod
    def regular(cls, data: bytes) -> FileRef:
        return cls(hashlib.sha256(data).hexdigest(), len(data), git_blob_oid(data), False)

    @classmethod
    def lfs_object(cls, sha256: str, size: int) -> FileRef:
        return cls(sha256, size, git_blob_oid(_lfs_pointer(sha256, size)), True)

    @property
    def pointer(self) -> bytes:
        return _lfs_pointer(self.sha256, self.size)

    @property
    def etag(self) -> str:  # what the client names the cached blob after: git oid, or sha256 for LFS
        return self.sha256 if self.lfs else self.oid


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: Mapping[str, FileRef]  # immutable snapshot: path -> file


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head commit oid


class HubError(Exception):
    """An error answer: status, message, and the ``X-Error-Code`` the client maps to an exception type."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class HubStorage:
    """Repos with a linear history of immutable snapshots per branch, over a content-addressed blob store."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._blobs: dict[str, bytes] = {}  # sha256 -> content

    def create_repo(self, repo_type: str, repo_id: str, private: bool = False) -> bool:
        """Create a repo with the Hub's initial commit (a ``.gitattributes``); False if it already exists."""
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                return False
            repo = Repo(repo_type, repo_id, private, _now())
            self._repos[(repo_type, repo_id)] = repo
            self.commit(repo, "main", [("add", ".gitattributes", self.put_blob(GITATTRIBUTES))], "initial commit")
            return True

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self._lock:
            self.repo(repo_type, repo_id)
            del self._repos[(repo_type, repo_id)]

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        with self._lock:
            if (repo_type, repo_id) not in self._repos:
                raise HubError(404, "Repository not found", "RepoNotFound")
            return self._repos[(repo_type, repo_id)]

    def resolve(self, repo: Repo, revision: str) -> Commit:
        """A branch name or a full commit sha -> commit."""
        with self._lock:
            oid = repo.branches.get(revision, revision)
            if oid not in repo.commits:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            return repo.commits[oid]

    def put_blob(self, data: bytes) -> FileRef:
        """Store ``data``; returns it as a regular file (see ``lfs_object`` for the LFS view)."""
        ref = FileRef.regular(data)
        with self._lock:
            self._blobs.setdefault(ref.sha256, data)
        return ref

    def lfs_object(self, sha256: str) -> FileRef | None:
        """The stored blob ``sha256`` as an LFS file, or None if it was never uploaded."""
        with self._lock:
            data = self._blobs.get(sha256)
        return None if data is None else FileRef.lfs_object(sha256, len(data))

    def read(self, ref: FileRef, start: int = 0, end: int | None = None) -> bytes:
        with self._lock:
            return self._blobs[ref.sha256][start:end]

    def commit(
        self, repo: Repo, branch: str, ops: list[tuple], title: str, message: str = "", parent: str | None = None
    ) -> Commit:
        """Apply ``ops`` (``("add", path, FileRef)``, ``("deletedFile", path)``, ``("deletedFolder", path)``) to the
        branch head as one new commit. All-or-nothing: nothing changes unless every operation applies."""
        with self._lock:
            head = repo.branches.get(branch)
            if head is None and repo.commits:  # commits go to an existing branch, not to a sha
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            if parent is not None and not (head or "").startswith(parent.lower()):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(repo.commits[head].files) if head else {}
            for op in ops:
                _apply(files, op)
            digest = hashlib.sha1(f"{head}\n{sorted(files.items())}\n{title}\n{time.time_ns()}".encode())
            commit = Commit(digest.hexdigest(), head, title, message, _now(), MappingProxyType(files))
            repo.commits[commit.oid] = commit
            repo.branches[branch] = commit.oid
            return commit

    def history(self, repo: Repo, commit: Commit) -> Iterator[Commit]:
        """``commit`` and its ancestors, newest first."""
        current: Commit | None = commit
        while current is not None:
            yield current
            current = repo.commits.get(current.parent) if current.parent else None


def _apply(files: dict[str, FileRef], op: tuple) -> None:
    kind, path = op[0], op[1].strip("/")
    if kind == "add":
        files[path] = op[2]
    elif kind == "deletedFile":
        if files.pop(path, None) is None:
            raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
    elif kind == "deletedFolder":
        inside = [p for p in files if p.startswith(path + "/")] if path else list(files)
        if not inside:
            raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
        for p in inside:
            del files[p]


def _folders(files: Mapping[str, FileRef]) -> set[str]:
    """Every folder that holds a file, at any depth ("a/b/c.txt" -> {"a", "a/b"})."""
    return {"/".join(parts[:i]) for parts in (path.split("/") for path in files) for i in range(1, len(parts))}


def _tree_entries(files: Mapping[str, FileRef], folder: str, recursive: bool) -> list[tuple[str, FileRef | None]]:
    """Entries under ``folder`` ("" = root), folders first: (path, FileRef) for files, (path, None) for folders."""
    prefix = folder + "/" if folder else ""

    def wanted(path: str) -> bool:
        return path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :])

    dirs = [(d, None) for d in sorted(_folders(files)) if wanted(d)]
    return dirs + [(p, ref) for p, ref in sorted(files.items()) if wanted(p)]


def _tree_oid(files: Mapping[str, FileRef], folder: str) -> str:
    inside = sorted((p, ref.oid) for p, ref in files.items() if p.startswith(folder + "/"))
    return hashlib.sha1(repr(inside).encode()).hexdigest()


def _card_data(files: Mapping[str, FileRef], storage: HubStorage) -> dict | None:
    if "README.md" not in files:
        return None
    match = re.match(r"---\r?\n(.*?)\r?\n---", storage.read(files["README.md"]).decode(errors="replace"), re.S)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------------------------------------- handler


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it. ``path`` is URL-decoded, without the query string."""

    method: str
    path: str
    query: str
    range: str | None
    status: int  # 0 when the connection was dropped without an answer
    bytes_sent: int  # response body bytes the server wrote, or began to write (HEAD: 0)
    bytes_received: int  # request body bytes
    authorization: bool  # whether an Authorization header was sent
    route: str | None  # the endpoint (a HubRequestHandler method name); None when no route matched
    detail: Mapping[str, Any] | None = None  # commit: paths per NDJSON key; LFS PUT: the oid


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None, **kw) -> Reply:
        headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(data).encode(), headers, **kw)

    @classmethod
    def error(cls, err: HubError) -> Reply:
        header_safe = " | ".join(err.message.splitlines()).encode("ascii", "backslashreplace").decode()
        headers = {**err.headers, "X-Error-Message": header_safe}
        if err.code:
            headers["X-Error-Code"] = err.code
        return cls.json({"error": err.message}, err.status, headers)


@dataclass(frozen=True)
class Request:
    params: dict[str, str]  # URL-decoded route groups
    query: dict[str, list[str]]
    body: bytes
    base_url: str  # http://host:port, as the client addressed us

    def flag(self, name: str) -> bool:
        return self.query.get(name, ["false"])[-1].lower() in ("1", "true")

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


_T = r"(?P<type>models|datasets|spaces)"
_R = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"
_WEB = rf"/(?:(?P<type>datasets|spaces)/)?{_R}"
ROUTES: list[tuple[tuple[str, ...], re.Pattern[str], str]] = [
    (methods, re.compile(pattern), name)
    for methods, pattern, name in [
        (("POST",), r"/api/repos/create", "create_repo"),
        (("DELETE",), r"/api/repos/delete", "delete_repo"),
        (("POST",), r"/api/validate-yaml", "validate_yaml"),
        (("GET",), r"/api/whoami-v2", "whoami"),
        (("GET",), rf"/api/{_T}/{_R}(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
        (("GET",), rf"/api/{_T}/{_R}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
        (("POST",), rf"/api/{_T}/{_R}/paths-info/(?P<rev>[^/]+)", "paths_info"),
        (("GET",), rf"/api/{_T}/{_R}/commits/(?P<rev>[^/]+)", "commits"),
        (("GET",), rf"/api/{_T}/{_R}/refs", "refs"),
        (("POST",), rf"/api/{_T}/{_R}/preupload/(?P<rev>[^/]+)", "preupload"),
        (("POST",), rf"/api/{_T}/{_R}/commit/(?P<rev>[^/]+)", "commit"),
        (("GET",), rf"/api/{_T}/{_R}/xet-(?:read|write)-token/.*", "xet_token"),
        (("POST",), rf"{_WEB}\.git/info/lfs/objects/batch", "lfs_batch"),
        (("PUT",), r"/lfs/objects/(?P<oid>[0-9a-f]{64})", "lfs_put"),
        (("POST",), r"/lfs/verify", "lfs_verify"),
        (("GET", "HEAD"), rf"{_WEB}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]
]


class HubRequestHandler(BaseHTTPRequestHandler):
    """Parses, fault-checks, dispatches and logs one request; the endpoints are the methods named in ROUTES."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # the request log replaces stderr noise
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two sends: without TCP_NODELAY the body waits for the client's delayed ACK of
        # the headers (Nagle), ~40 ms on every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ------------------------------------------------------------------------------------------------- plumbing

    def _handle(self) -> None:
        hub = self.server.hub
        raw_path, _, query = self.path.partition("?")
        request_body = self._read_body()
        fault = hub._take_fault(self.command, unquote(raw_path))
        route, params = self._match(raw_path)
        reply = Reply(0)  # status 0: drop the connection without an answer
        if fault is not None and fault.mode == "stall":
            hub._stopped.wait(hub.stall_seconds)  # answer nothing for a while, then drop
        elif fault is None or fault.mode == "truncate":
            reply = self._dispatch(route, params, query, request_body)
        elif fault.mode != "drop":
            reply = Reply.error(HubError(int(fault.mode), f"Injected fault ({fault.mode})"))
        body = b"" if self.command == "HEAD" or not reply.status else reply.body
        truncate = fault is not None and fault.mode == "truncate"
        body = body[: len(body) // 2] if truncate else body
        # Recorded before answering, so that a client that got its answer always finds the request in the log.
        hub._record(
            LoggedRequest(
                self.command,
                unquote(raw_path),
                query,
                self.headers.get("Range"),
                reply.status,
                len(body),
                len(request_body),
                "Authorization" in self.headers,
                route,
                MappingProxyType(reply.detail) if reply.detail else None,
            )
        )
        if reply.status:
            self._send(reply, body)
        self.close_connection = self.close_connection or truncate or not reply.status

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)

    def _match(self, raw_path: str) -> tuple[str | None, dict[str, str]]:
        """The endpoint for this method and path, with its URL-decoded route groups."""
        for methods, pattern, name in ROUTES:
            match = pattern.fullmatch(raw_path)
            if match and self.command in methods:
                return name, {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
        return None, {}

    def _dispatch(self, route: str | None, params: dict[str, str], query: str, body: bytes) -> Reply:
        if route is None:
            return Reply.error(HubError(404, f"Not Found: {self.command} {self.path}"))
        host, port = self.server.server_address[:2]
        base_url = f"http://{self.headers.get('Host') or f'{host}:{port}'}"
        try:
            return getattr(self, route)(Request(params, parse_qs(query, keep_blank_values=True), body, base_url))
        except HubError as err:
            return Reply.error(err)
        except (json.JSONDecodeError, binascii.Error) as err:
            return Reply.error(HubError(400, f"Malformed request body: {err}"))
        except Exception:  # a server bug: answer 500 with the traceback so the failing test shows it
            return Reply.error(HubError(500, traceback.format_exc()[-2000:]))

    def _send(self, reply: Reply, body: bytes) -> None:
        """Status and headers of ``reply`` (Content-Length: the full body's), then ``body`` (maybe cut short)."""
        try:
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ------------------------------------------------------------------------------------------------- helpers

    @property
    def storage(self) -> HubStorage:
        return self.server.hub.storage

    def _repo(self, req: Request) -> Repo:
        repo_type = API_TYPES[req.params.get("type", "models")]  # web routes have no prefix for models
        return self.storage.repo(repo_type, f"{req.params['ns']}/{req.params['name']}")

    def _repo_url(self, req: Request, repo: Repo) -> str:
        return f"{req.base_url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    def _entry(self, repo: Repo, commit: Commit, path: str, ref: FileRef | None, expand: bool) -> dict:
        """A tree / paths-info entry, as ``RepoFile`` / ``RepoFolder`` parse it."""
        if ref is None:
            entry = {"type": "directory", "oid": _tree_oid(commit.files, path), "size": 0, "path": path}
        else:
            entry = {"type": "file", "oid": ref.oid, "size": ref.size, "path": path}
            if ref.lfs:
                entry["lfs"] = {"oid": ref.sha256, "size": ref.size, "pointerSize": len(ref.pointer)}
        if expand:
            last = self._last_commit(repo, commit, path, ref)
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
            if ref is not None:
                entry["securityFileStatus"] = SAFE_SCAN
        return entry

    def _last_commit(self, repo: Repo, commit: Commit, path: str, ref: FileRef | None) -> Commit:
        def state(c: Commit) -> Any:
            return c.files.get(path) if ref is not None else _tree_oid(c.files, path)

        last = commit
        for older in self.storage.history(repo, commit):
            if state(older) != state(commit):
                break
            last = older
        return last

    # ------------------------------------------------------------------------------------------------- endpoints

    def create_repo(self, req: Request) -> Reply:
        data = req.json()
        repo_type = data.get("type") or "model"
        repo_id = f"{data.get('organization') or USER}/{data['name']}"
        private = data.get("visibility") == "private" or bool(data.get("private"))
        url = f"{req.base_url}/{URL_PREFIX[repo_type]}{repo_id}"
        if not self.storage.create_repo(repo_type, repo_id, private):
            return Reply.json({"error": f"You already created this {repo_type} repo", "url": url}, 409)
        return Reply.json({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self, req: Request) -> Reply:
        data = req.json()
        self.storage.delete_repo(data.get("type") or "model", f"{data.get('organization') or USER}/{data['name']}")
        return Reply.json({})

    def validate_yaml(self, req: Request) -> Reply:
        match = re.match(r"---\r?\n(.*?)\r?\n---", req.json().get("content", ""), re.S)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as err:
            return Reply.json({"errors": [{"message": f"Invalid YAML: {err}"}], "warnings": []}, 400)
        if metadata is not None and not isinstance(metadata, dict):
            return Reply.json({"errors": [{"message": "Metadata must be a YAML mapping"}], "warnings": []}, 400)
        return Reply.json({"errors": [], "warnings": []})

    def whoami(self, req: Request) -> Reply:
        return Reply.json({"type": "user", "name": USER, "fullname": USER, "orgs": [], "auth": {}})

    def repo_info(self, req: Request) -> Reply:
        repo = self._repo(req)
        commit = self.storage.resolve(repo, req.params.get("rev", "main"))
        blobs = req.flag("blobs")
        siblings = []
        for path, ref in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=ref.size, blobId=ref.oid)
                if ref.lfs:
                    sibling["lfs"] = {"size": ref.size, "sha256": ref.sha256, "pointerSize": len(ref.pointer)}
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": _card_data(commit.files, self.storage),
            "siblings": siblings,
            "usedStorage": sum(ref.size for ref in commit.files.values()),
        }
        if "expand" in req.query:
            info = {k: v for k, v in info.items() if k in {"_id", "id", *req.query["expand"]}}
        return Reply.json(info)

    def tree(self, req: Request) -> Reply:
        repo = self._repo(req)
        commit = self.storage.resolve(repo, req.params["rev"])
        folder = req.params.get("path", "").strip("/")
        if folder and folder not in _folders(commit.files):
            raise HubError(404, f"{folder} does not exist on {req.params['rev']}", "EntryNotFound")
        expand = req.flag("expand")
        entries = _tree_entries(commit.files, folder, req.flag("recursive"))
        page_size = self.server.hub.tree_page_size // (20 if expand else 1) or 1
        start = int(base64.urlsafe_b64decode(req.query["cursor"][-1]).decode()) if "cursor" in req.query else 0
        page = [self._entry(repo, commit, p, ref, expand) for p, ref in entries[start : start + page_size]]
        headers = {}
        if start + page_size < len(entries):
            cursor = base64.urlsafe_b64encode(str(start + page_size).encode()).decode()
            flags = f"recursive={req.flag('recursive')}&expand={expand}".lower()
            query = f"{flags}&cursor={cursor}"
            headers["Link"] = f'<{req.base_url}{self.path.partition("?")[0]}?{query}>; rel="next"'
        return Reply.json(page, headers=headers)

    def paths_info(self, req: Request) -> Reply:
        repo = self._repo(req)
        commit = self.storage.resolve(repo, req.params["rev"])
        form = parse_qs(req.body.decode(), keep_blank_values=True)
        expand = form.get("expand", ["false"])[-1].lower() in ("1", "true")
        folders = _folders(commit.files)
        out = []
        for path in (p.strip("/") for p in form.get("paths", [])):
            if path in commit.files or path in folders:
                out.append(self._entry(repo, commit, path, commit.files.get(path), expand))
        return Reply.json(out)

    def commits(self, req: Request) -> Reply:
        repo = self._repo(req)
        commit = self.storage.resolve(repo, req.params["rev"])
        return Reply.json(
            [
                {"id": c.oid, "title": c.title, "message": c.message, "date": c.date, "authors": [{"user": USER}]}
                for c in self.storage.history(repo, commit)
            ]
        )

    def refs(self, req: Request) -> Reply:
        repo = self._repo(req)
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid} for b, oid in repo.branches.items()]
        return Reply.json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def preupload(self, req: Request) -> Reply:
        repo = self._repo(req)
        head = self.storage.resolve(repo, req.params["rev"])
        threshold = self.server.hub.lfs_threshold
        answers = []
        for item in req.json().get("files", []):
            lfs = threshold is not None and item["size"] > 0 and item["size"] >= threshold
            answer = {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if (current := head.files.get(item["path"])) is not None:
                answer["oid"] = current.sha256 if lfs else git_blob_oid(self.storage.read(current))
            answers.append(answer)
        return Reply.json({"files": answers, "commitOid": head.oid})

    def commit(self, req: Request) -> Reply:
        repo = self._repo(req)
        if "create_pr" in req.query:
            raise HubError(501, "Pull requests are not supported by the test hub")
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        ops, detail = [], {}
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                continue
            detail.setdefault(key, []).append(value["path"])
            if key == "lfsFile":
                detail.setdefault("lfs_oids", {})[value["path"]] = value["oid"]
            ops.append(self._commit_op(key, value))
        title, message, parent = header.get("summary", ""), header.get("description", ""), header.get("parentCommit")
        commit = self.storage.commit(repo, req.params["rev"], ops, title, message, parent)
        url = f"{self._repo_url(req, repo)}/commit/{commit.oid}"
        return Reply.json({"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""}, detail=detail)

    def _commit_op(self, key: str, value: dict) -> tuple:
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
            return ("add", value["path"], self.storage.put_blob(base64.b64decode(value["content"])))
        if key == "lfsFile":
            ref = self.storage.lfs_object(value["oid"])
            if ref is None:
                raise HubError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
            return ("add", value["path"], ref)
        if key in ("deletedFile", "deletedFolder"):
            return (key, value["path"])
        raise HubError(400, f"Unknown commit operation {key!r}")

    def xet_token(self, req: Request) -> Reply:
        raise HubError(501, "The test hub has no Xet storage: set HF_HUB_DISABLE_XET=1 or use lfs_threshold=None")

    def lfs_batch(self, req: Request) -> Reply:
        self._repo(req)
        objects = []
        for obj in req.json().get("objects", []):
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if self.storage.lfs_object(obj["oid"]) is None:
                answer["actions"] = {
                    "upload": {"href": f"{req.base_url}/lfs/objects/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{req.base_url}/lfs/verify", "header": {}},
                }
            objects.append(answer)
        return Reply.json({"transfer": "basic", "objects": objects})

    def lfs_put(self, req: Request) -> Reply:
        if hashlib.sha256(req.body).hexdigest() != req.params["oid"]:
            raise HubError(400, "Uploaded content does not match its sha256")
        self.storage.put_blob(req.body)
        return Reply(200, detail={"oid": req.params["oid"]})

    def lfs_verify(self, req: Request) -> Reply:
        ref = self.storage.lfs_object(req.json()["oid"])
        if ref is None or ref.size != req.json()["size"]:
            raise HubError(404, "LFS object not found")
        return Reply.json({"success": True})

    def resolve(self, req: Request) -> Reply:
        repo = self._repo(req)
        commit = self.storage.resolve(repo, req.params["rev"])
        ref = commit.files.get(req.params["path"])
        if ref is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{ref.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if ref.lfs:
            headers.update({"X-Linked-Etag": f'"{ref.sha256}"', "X-Linked-Size": str(ref.size)})
        start, end = _parse_range(self.headers.get("Range"), ref.size)
        if start is None:
            headers["Content-Length"] = str(ref.size)
            body = b"" if self.command == "HEAD" else self.storage.read(ref)
            return Reply(200, body, headers)
        if start >= ref.size or start > end:
            raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{ref.size}"})
        headers.update({"Content-Range": f"bytes {start}-{end}/{ref.size}", "Content-Length": str(end - start + 1)})
        return Reply(206, b"" if self.command == "HEAD" else self.storage.read(ref, start, end + 1), headers)


def _parse_range(header: str | None, size: int) -> tuple[int | None, int]:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> inclusive (start, end); (None, 0) for no (or a multi) range."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if match is None or match.group(1) == match.group(2) == "":
        return None, 0
    first, last = match.groups()
    if first == "":
        return max(size - int(last), 0), size - 1
    return int(first), min(int(last), size - 1) if last else size - 1


# ---------------------------------------------------------------------------------------------------------- server


@dataclass
class Fault:
    """Makes the next ``remaining`` requests that match fail; ``hits`` counts those that did."""

    method: str | None
    path_contains: str
    mode: str  # an HTTP status ("500", "503", ...), "drop", "truncate" or "stall"
    remaining: int
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in (None, method) and self.path_contains in path


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], hub: HubServer):
        self.hub = hub
        self.connections: set[socket.socket] = set()
        super().__init__(address, HubRequestHandler)

    def process_request_thread(self, request, client_address) -> None:
        self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.discard(request)

    def close_connections(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class HubServer:
    """The local Hub: storage + an HTTP server on 127.0.0.1 in a background thread, a request log, fault injection.

    Args:
        port: port to bind; 0 picks a free one.
        lfs_threshold: files of at least this many bytes are answered "lfs" by preupload (the client then uploads
            them with git-LFS, which needs ``HF_HUB_DISABLE_XET=1``); None answers "regular" for every file.
        tree_page_size: entries per tree page (the Hub uses 1000, and 1/20 of it with ``expand=True``).
    """

    def __init__(self, *, port: int = 0, lfs_threshold: int | None = None, tree_page_size: int = 1000):
        self.storage = HubStorage()
        self.lfs_threshold = lfs_threshold
        self.tree_page_size = tree_page_size
        self.stall_seconds = 30.0  # how long a "stall" fault holds a request (or until the server stops)
        self._stopped = threading.Event()
        self._port = port
        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> HubServer:
        self._stopped.clear()
        self._httpd = _HTTPServer(("127.0.0.1", self._port), self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()  # stalled requests end
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def offline(self) -> Iterator[None]:
        """The Hub unreachable: the port refuses connections (clients get ``ConnectError``) until the block ends."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def client_env(self, home: str | Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess client: this endpoint, every HF cache under ``home``, no ambient token."""
        env = {k: v for k, v in (base or os.environ).items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
        env.update(HF_ENDPOINT=self.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
        env.update(HF_HUB_DISABLE_PROGRESS_BARS="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1")
        return env

    # ------------------------------------------------------------------------------------------------- log

    @property
    def log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def bytes_served(self, path_prefix: str | None = None) -> int:
        """Response body bytes sent (since the last ``clear_log``), for paths starting with ``path_prefix``."""
        return sum(e.bytes_sent for e in self.log if path_prefix is None or e.path.startswith(path_prefix))

    def repo_bytes(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> int:
        """Total size of the files of ``repo_id`` at ``revision``."""
        repo = self.storage.repo(repo_type, repo_id)
        return sum(ref.size for ref in self.storage.resolve(repo, revision).files.values())

    def uploaded_paths(self) -> list[str]:
        """Paths whose content travelled to the server (since the last ``clear_log``): the base64 ``file`` lines of
        successful commits, and their ``lfsFile`` lines whose object was PUT."""
        put = {e.detail["oid"] for e in self.log if e.route == "lfs_put" and e.status == 200 and e.detail}
        paths = []
        for entry in self.log:
            if entry.route == "commit" and entry.status == 200 and entry.detail:
                paths += entry.detail.get("file", [])
                paths += [p for p, oid in entry.detail.get("lfs_oids", {}).items() if oid in put]
        return paths

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    # ------------------------------------------------------------------------------------------------- faults

    def fail(self, method: str | None = None, path_contains: str = "", times: int = 1, mode: str | int = 500) -> Fault:
        """Make the next ``times`` requests matching ``method`` (None: any) and ``path_contains`` (a substring of
        the URL-decoded path) fail. ``mode``: an HTTP status (e.g. 500, 503: answered without processing the
        request), ``"drop"`` (connection closed without an answer, request not processed), ``"truncate"``
        (request processed, e.g. the commit lands, then the connection closes halfway through the response body)
        or ``"stall"`` (no answer for ``stall_seconds`` or until the server stops, then dropped: a Hub that
        accepts connections but does not answer, for testing timeouts)."""
        mode = str(mode)
        if mode not in ("drop", "truncate", "stall") and not (mode.isdigit() and 400 <= int(mode) <= 599):
            raise ValueError(f"mode must be an HTTP error status, 'drop', 'truncate' or 'stall', got {mode!r}")
        fault = Fault(method.upper() if method else None, path_contains, mode, times)
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    fault.hits += 1
                    return fault
        return None


@contextlib.contextmanager
def point_client_at(url: str, home: str | Path) -> Iterator[None]:
    """Point this process's huggingface_hub (and datasets, if installed) at ``url``.

    Both libraries read ``HF_ENDPOINT`` and their cache paths into module constants at import time, so setting the
    environment variable in a test is too late; this patches those constants (endpoint, URL templates, caches and
    token path under ``home``), transformers' cached ``HfApi`` and the environment (for subprocesses), and restores
    everything on exit.
    """
    from huggingface_hub import HfFileSystem, constants

    home = Path(home)
    hub_cache = home / "hub"
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context
        for name, value in {
            "ENDPOINT": url,
            "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(hub_cache),
            "HUGGINGFACE_HUB_CACHE": str(hub_cache),
            "HF_XET_CACHE": str(home / "xet"),
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HUB_OFFLINE": False,
        }.items():
            patch(mock.patch.object(constants, name, value))
        if importlib.util.find_spec("transformers") is not None:
            # transformers keeps the first HfApi it makes (and its endpoint) for the process: a later test's Hub
            # would see an earlier test's stopped server (50 s of retries of a refused connection)
            patch(mock.patch.object(importlib.import_module("transformers.utils.hub"), "_hf_api", None))
        if importlib.util.find_spec("datasets") is not None:
            # Imported now (not first inside the block) so that its import-time constants are restored on exit.
            _patch_datasets_config(stack, importlib.import_module("datasets.config"), url, home)
        environ = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
        patch(mock.patch.dict(os.environ, {**environ, "HF_ENDPOINT": url, "HF_HOME": str(home)}, clear=True))
        try:
            yield
        finally:
            HfFileSystem.clear_instance_cache()


def _patch_datasets_config(stack: contextlib.ExitStack, config: Any, url: str, home: Path) -> None:
    datasets_cache = home / "datasets"
    for name, value in {
        "HF_ENDPOINT": url,
        "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": datasets_cache,
        "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": datasets_cache / "downloads",
        "EXTRACTED_DATASETS_PATH": datasets_cache / "downloads" / "extracted",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
    }.items():
        if hasattr(config, name):
            stack.enter_context(mock.patch.object(config, name, value))


if __name__ == "__main__":
    with HubServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0) as server:
        print(f"serving a test Hub on {server.url} (HF_ENDPOINT={server.url}); Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
