"""Where a store's files live: a local folder, or a Hugging Face dataset repo pinned to one commit.

Both sides list the store's files once (names and sizes), read small files whole and open Parquet files for
random access. On the Hub, reads are HTTP range requests through ``HfFileSystem`` with a small block size, so a
footer or a row group costs about its own size, never the whole file.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import BinaryIO

from vitattn.store.layout import StoreError, is_store_file

HUB_BLOCK_SIZE = 64 * 1024  # bytes per range request (fsspec's default of 5 MiB reads far past what is asked)
HUB_LOCATION = re.compile(r"hf://datasets/([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([^@\s]+))?/?")


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
    """A store in a Hub dataset repo, pinned to the commit its revision pointed at when opened.

    Args:
        repo_id: ``namespace/name``.
        revision: branch, tag or commit sha (default: main).
        token: passed to huggingface_hub; reading public stores needs none.
    """

    def __init__(self, repo_id: str, revision: str | None = None, token: str | bool | None = None):
        from huggingface_hub import HfApi, HfFileSystem
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        where = f"hf://datasets/{repo_id}" + (f"@{revision}" if revision else "")
        try:
            self.revision = HfApi(token=token).dataset_info(repo_id, revision=revision).sha
        except RevisionNotFoundError:
            raise StoreError(f"{where}: no revision {revision!r} in dataset {repo_id}") from None
        except RepositoryNotFoundError:
            raise StoreError(f"{where}: no dataset {repo_id} on the Hub (or it is private)") from None
        except Exception as e:  # connection refused, timeouts, HTTP errors: the app shows the message
            raise StoreError(f"{where}: cannot reach the Hub ({type(e).__name__}: {e})") from e
        self.fs = HfFileSystem(token=token, block_size=HUB_BLOCK_SIZE, skip_instance_cache=True)
        self.transient = _network_errors()
        self.root = f"datasets/{repo_id}@{self.revision}"

    def list(self) -> dict[str, int]:
        """One recursive tree listing; it also fills the file system's cache, so opening a file costs no request."""
        found = self.fs.find(self.root, detail=True)
        out = {}
        for name, info in found.items():
            rel = name[len(self.root) + 1 :]
            if is_store_file(rel):
                out[rel] = int(info["size"])
        return out

    def read(self, rel: str) -> bytes:
        return self.fs.cat_file(f"{self.root}/{rel}")

    def open(self, rel: str) -> BinaryIO:
        """The file for random access: its tail (the Parquet footer; a small file whole) in one range request now,
        then one range request per read outside it (pyarrow coalesces a row group's columns into one read)."""
        remote = self.fs.open(f"{self.root}/{rel}", "rb", block_size=HUB_BLOCK_SIZE, cache_type="none")
        return TailCachedFile(remote, HUB_BLOCK_SIZE)


class TailCachedFile(io.RawIOBase):
    """A read-only file over ``remote`` (an fsspec file) that keeps its last ``tail`` bytes in memory.

    pyarrow reads the last 64 KiB of a Parquet file for its footer, then the row groups asked for: with the tail
    kept, the footer costs one request and a file smaller than the tail costs no other.
    """

    def __init__(self, remote, tail: int):
        super().__init__()
        self._remote = remote
        self.size = int(remote.size)
        self._start = max(0, self.size - tail)
        remote.seek(self._start)
        self._tail = remote.read(self.size - self._start)
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
        head = b""
        if self._pos < self._start:  # the part before the tail comes from the remote file
            self._remote.seek(self._pos)
            head = self._remote.read(min(end, self._start) - self._pos)
        data = head + self._tail[max(self._pos, self._start) - self._start : max(end - self._start, 0)]
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._remote.close()
        super().close()


def _network_errors() -> tuple[type[Exception], ...]:
    """HTTP and connection errors of the Hub client (huggingface_hub 2.x speaks HTTP through httpx2)."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        import httpx2

        return (HfHubHTTPError, httpx2.HTTPError, ConnectionError, TimeoutError)
    except ImportError:
        return (HfHubHTTPError, ConnectionError, TimeoutError)


def open_files(location: str | Path, token: str | bool | None = None) -> LocalFiles | HubFiles:
    """``hf://datasets/<namespace>/<name>[@<revision>]`` or a local folder."""
    text = str(location).strip()
    if text.startswith("hf://"):
        match = HUB_LOCATION.fullmatch(text)
        if match is None:
            raise StoreError(f"store location {text!r}: expected hf://datasets/<namespace>/<name>[@<revision>]")
        return HubFiles(match[1], match[2], token)
    return LocalFiles(text)


def read_whole(files: LocalFiles | HubFiles, rel: str) -> io.BytesIO:
    return io.BytesIO(files.read(rel))
