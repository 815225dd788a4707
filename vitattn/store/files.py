"""Where a store's files live: a local folder, or a Hugging Face dataset repo pinned to one commit.

Both sides list the store's files once (names and sizes), read small files whole and open Parquet files for
random access. On the Hub, reads are plain HTTP GETs through huggingface_hub's shared session (range requests for
Parquet files, so a footer or a row group costs about its own size, never the whole file), read-only, each bounded
by ``timeout`` and retried ``retries`` times after a short wait: when the Hub is down a view fails within seconds
with `HubUnavailable` instead of waiting out huggingface_hub's own back-off (about 23 s per read, HfFileSystem's).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from vitattn.hub import HUB_DATASET
from vitattn.secrets import redact
from vitattn.store.layout import HubUnavailable, StoreError, is_store_file

HUB_BLOCK_SIZE = 64 * 1024  # bytes fetched at the end of a file when it is opened (the Parquet footer)
HUB_TIMEOUT = 10.0  # seconds to wait between two packets of an answer
HUB_CONNECT_TIMEOUT = 5.0  # seconds to wait for a connection (at most HUB_TIMEOUT)
HUB_RETRIES = 1  # further tries after a connection error, a timeout or a 429 / 5xx answer
HUB_RETRY_WAIT = 0.5  # seconds before a retry
RETRY_STATUS = (408, 429, 500, 502, 503, 504)
HUB_LOCATION = re.compile(HUB_DATASET.pattern + "/?")  # a store location may end in a slash


class LocalFiles:
    """A store in a local folder."""

    revision = None
    transient: tuple[type[Exception], ...] = ()  # errors after which a read may succeed if tried again

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise StoreError(f"no store at {str(root)!r}: not a folder (nor hf://datasets/<namespace>/<name>)")

    def list(self) -> dict[str, int]:
        """Every file of the layout: relative path -> size in bytes."""
        out = {}
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root).as_posix()
            if is_store_file(rel) and path.is_file():
                out[rel] = path.stat().st_size
        return out

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def open(self, rel: str) -> BinaryIO:
        return open(self.root / rel, "rb")


class HubFiles:
    """A store in a Hub dataset repo, pinned to the commit its revision pointed at when opened. Reads only.

    Args:
        repo_id: ``namespace/name``.
        revision: branch, tag or commit sha (default: main).
        token: passed to huggingface_hub (None: ``HF_TOKEN`` or the stored login, if any); public stores need none.
        timeout: seconds a request may wait between two packets of the answer (to connect: at most 5).
        retries: further tries of a request that failed on the network or with a 429 / 5xx answer.

    Raises:
        StoreError: no such dataset or revision; `HubUnavailable` when the Hub cannot be reached.
    """

    transient = (HubUnavailable,)

    def __init__(
        self,
        repo_id: str,
        revision: str | None = None,
        token: str | bool | None = None,
        *,
        timeout: float = HUB_TIMEOUT,
        retries: int = HUB_RETRIES,
    ):
        from huggingface_hub import constants
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
        from huggingface_hub.utils import build_hf_headers

        self.repo_id, self.timeout, self.retries = repo_id, timeout, retries
        self.where = f"hf://datasets/{repo_id}" + (f"@{revision}" if revision else "")
        self._endpoint = constants.ENDPOINT.rstrip("/")
        self._headers = build_hf_headers(token=token)  # no Authorization header when no token is configured
        self._secret = self._headers.get("authorization", "").partition(" ")[2]  # never shown in a message
        info = f"{self._endpoint}/api/datasets/{repo_id}"
        info += f"/revision/{quote(revision, safe='')}" if revision else ""
        try:
            response = self._get(info, self.where)
        except RevisionNotFoundError:
            raise StoreError(f"{self.where}: no revision {revision!r} in dataset {repo_id}") from None
        except RepositoryNotFoundError:
            raise StoreError(f"{self.where}: no dataset {repo_id} on the Hub (or it is private)") from None
        except HfHubHTTPError as e:
            raise StoreError(f"{self.where}: not found on the Hub ({self._clean(e)})") from None
        try:
            self.revision = str(response.json()["sha"])
        except (KeyError, TypeError, ValueError):
            raise HubUnavailable(f"{self.where}: the Hub's answer about the dataset was not understood") from None
        self.root = f"{self._endpoint}/datasets/{repo_id}/resolve/{self.revision}"
        self._sizes: dict[str, int] = {}  # from the listing

    def list(self) -> dict[str, int]:
        """Every file of the layout at the pinned commit (one tree listing, paged by the Hub)."""
        url: str | None = f"{self._endpoint}/api/datasets/{self.repo_id}/tree/{self.revision}?recursive=true"
        out = {}
        while url:
            response = self._get(url, self.where)
            try:
                for entry in response.json():
                    if entry.get("type") == "file" and is_store_file(entry["path"]):
                        out[entry["path"]] = int(entry["size"])
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise HubUnavailable(f"{self.where}: the Hub's file listing was not understood ({e!r})") from None
            url = response.links.get("next", {}).get("url")
        self._sizes = dict(out)
        return out

    def read(self, rel: str) -> bytes:
        return self._file_get(rel).content

    def open(self, rel: str) -> BinaryIO:
        """The file for random access: its tail (the Parquet footer; a small file whole) in one range request now,
        then one range request per read outside the tail (pyarrow reads a row group in one)."""
        size = (self._sizes or self.list()).get(rel)  # sizes from the listing
        if size is None:
            raise StoreError(f"{rel} is not in the store's listing")
        tail = self._range(rel, max(0, size - HUB_BLOCK_SIZE), size)
        return RangeFile(lambda start, end: self._range(rel, start, end), size, tail)

    def _range(self, rel: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a file."""
        if end <= start:
            return b""
        response = self._file_get(rel, f"bytes={start}-{end - 1}")
        data = response.content if response.status_code == 206 else response.content[start:end]
        if len(data) != end - start:
            raise HubUnavailable(f"{rel}: the Hub sent {len(data)} of the {end - start} bytes asked for; try again")
        return data

    def _file_get(self, rel: str, byte_range: str | None = None):
        from huggingface_hub.errors import HfHubHTTPError

        try:
            return self._get(f"{self.root}/{quote(rel)}", rel, {"Range": byte_range} if byte_range else None)
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            raise StoreError(f"{rel} is listed in the store but the Hub has no such file (HTTP {status})") from None

    def _get(self, url: str, what: str, headers: dict[str, str] | None = None):
        """GET ``url``, each try bounded by ``timeout``, retried ``retries`` times on network errors and 408 / 429 /
        5xx answers. Raises `HubUnavailable` for those and other unexpected answers, and huggingface_hub's own
        errors for 404s (no such repo, revision or file; callers name them)."""
        import httpx2
        from huggingface_hub.errors import (
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
        from huggingface_hub.utils import get_session, hf_raise_for_status

        timeout = httpx2.Timeout(self.timeout, connect=min(self.timeout, HUB_CONNECT_TIMEOUT))
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(HUB_RETRY_WAIT)
            try:
                response = get_session().get(url, headers={**self._headers, **(headers or {})}, timeout=timeout)
            except OfflineModeIsEnabled:
                raise HubUnavailable(f"{what}: HF_HUB_OFFLINE is set: the Hub is not asked") from None
            except (httpx2.TransportError, RuntimeError) as e:  # RuntimeError: another thread closed the session
                reason = f"{type(e).__name__}: {e}"
                continue
            if response.status_code in RETRY_STATUS:
                reason = f"HTTP {response.status_code} {response.reason_phrase}"
                continue
            try:
                hf_raise_for_status(response)
            except HfHubHTTPError as e:
                missing = isinstance(e, (RepositoryNotFoundError, RevisionNotFoundError))
                if missing or response.status_code == 404:
                    raise
                detail = self._clean(getattr(e, "server_message", None) or e)
                message = f"the Hub refused the request (HTTP {response.status_code}: {detail}); try again"
                raise HubUnavailable(f"{what}: {message}") from None
            return response
        raise HubUnavailable(f"{what}: the Hub is unreachable ({self._clean(reason)}); try again")

    def _clean(self, text: object) -> str:
        """One line, shortened, with the token (if any) blanked out."""
        text = " ".join(str(text).split())[:300]
        return redact(text, self._secret)


class RangeFile(io.RawIOBase):
    """A read-only file of ``size`` bytes over ``fetch(start, end)`` whose last bytes (``tail``) are in memory.

    pyarrow reads the last 64 KiB of a Parquet file for its footer, then the row groups asked for: with the tail
    kept, the footer costs one request and a file smaller than the tail costs no other.
    """

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, tail: bytes):
        super().__init__()
        self._fetch = fetch
        self.size = size
        self._start = size - len(tail)
        self._tail = tail
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = min(max(0, base + offset), self.size)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self._pos + n)
        head = self._fetch(self._pos, min(end, self._start)) if self._pos < self._start else b""
        data = head + self._tail[max(self._pos, self._start) - self._start : max(end - self._start, 0)]
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_files(
    location: str | Path, token: str | bool | None = None, timeout: float = HUB_TIMEOUT
) -> LocalFiles | HubFiles:
    """``hf://datasets/<namespace>/<name>[@<revision>]`` or a local folder."""
    text = str(location).strip()
    if text.startswith("hf://"):
        match = HUB_LOCATION.fullmatch(text)
        if match is None:
            raise StoreError(f"store location {text!r}: expected hf://datasets/<namespace>/<name>[@<revision>]")
        return HubFiles(match[1], match[2], token, timeout=timeout)
    return LocalFiles(text)
