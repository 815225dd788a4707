"""The local Hub (tests/hubserver.py) driven by the real huggingface_hub client, HfFileSystem and datasets.

Run: python -m pytest tests/test_hubserver.py -q
"""

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import httpx2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hubserver import GITATTRIBUTES, HubServer, point_client_at
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    HfFileSystem,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

REPO = "ns/data"
CARD = """---
configs:
- config_name: alpha
  data_files: data/alpha.parquet
- config_name: beta
  data_files:
  - split: train
    path: data/beta/*.parquet
---
# A test dataset
"""


def parquet_bytes(n_rows: int, row_group_size: int, start: int = 0) -> bytes:
    """A Parquet file sorted by ``id`` (so row-group statistics prune), with small row groups."""
    ids = list(range(start, start + n_rows))
    table = pa.table({"id": ids, "value": [i * 0.5 for i in ids], "name": [f"row-{i:07d}" for i in ids]})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size)
    return buf.getvalue()


def push(api: HfApi, files: dict[str, bytes], message: str = "push", **kwargs) -> str:
    ops = [CommitOperationAdd(path, data) for path, data in files.items()]
    return api.create_commit(REPO, ops, commit_message=message, repo_type="dataset", **kwargs).oid


@pytest.fixture
def api(hub: HubServer) -> HfApi:
    return HfApi(endpoint=hub.url, token=False)


@pytest.fixture
def dataset(hub: HubServer, api: HfApi) -> dict[str, bytes]:
    """REPO with a dataset card and three Parquet files, pushed in one commit; the log is cleared afterwards."""
    files = {
        "README.md": CARD.encode(),
        "data/alpha.parquet": parquet_bytes(3000, 300),
        "data/beta/0.parquet": parquet_bytes(40, 10, start=0),
        "data/beta/1.parquet": parquet_bytes(60, 10, start=40),
    }
    api.create_repo(REPO, repo_type="dataset")
    push(api, files, "add data")
    hub.clear_log()
    return files


def test_create_repo_conflict_and_exist_ok(hub, api):
    url = api.create_repo(REPO, repo_type="dataset")
    assert (url.repo_id, url.repo_type, url.endpoint) == (REPO, "dataset", hub.url)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(REPO, repo_type="dataset")
    assert err.value.response.status_code == 409
    assert api.create_repo(REPO, repo_type="dataset", exist_ok=True).repo_id == REPO
    # Like the Hub, a new repo starts with an initial commit holding .gitattributes.
    info = api.repo_info(REPO, repo_type="dataset")
    assert len(info.sha) == 40 and [s.rfilename for s in info.siblings] == [".gitattributes"]
    api.create_repo("ns/model")  # models live apart from datasets
    assert api.repo_exists("ns/model") and not api.repo_exists("ns/model", repo_type="dataset")


def test_commit_sends_base64_ndjson_and_skips_unchanged_files(hub, api, dataset):
    first = api.list_repo_commits(REPO, repo_type="dataset")[0]
    hub.clear_log()
    # Re-send every file plus a new one: only the new one travels.
    push(api, {**dataset, "data/gamma.parquet": parquet_bytes(10, 10)}, "add gamma")
    routes = [e.route for e in hub.log]
    assert routes == ["validate_yaml", "preupload", "commit"]  # README.md triggers validate-yaml first
    assert hub.uploaded_paths() == ["data/gamma.parquet"]
    [commit] = [e for e in hub.log if e.route == "commit"]
    assert commit.detail["file"] == ["data/gamma.parquet"]  # NDJSON "file" lines: content inline, base64
    assert commit.bytes_received > len(parquet_bytes(10, 10)) * 4 / 3
    head = api.list_repo_commits(REPO, repo_type="dataset")
    assert [c.title for c in head[:2]] == ["add gamma", "add data"] and head[1].commit_id == first.commit_id
    assert hub.repo_bytes(REPO) == sum(map(len, dataset.values())) + len(parquet_bytes(10, 10)) + len(GITATTRIBUTES)


def test_first_commit_uploads_every_file_regular(hub, api):
    api.create_repo(REPO, repo_type="dataset")
    hub.clear_log()
    files = {"README.md": CARD.encode(), "data/alpha.parquet": parquet_bytes(100, 10)}
    push(api, files)
    assert [e.route for e in hub.log] == ["validate_yaml", "preupload", "commit"]  # no LFS, no Xet
    assert sorted(hub.uploaded_paths()) == sorted(files)
    head = hub.storage.resolve(hub.storage.repo("dataset", REPO), "main")
    assert {path: hub.storage.read(head.files[path]) for path in files} == files


def test_deletions_and_unicode_paths(api, dataset):
    ops = [CommitOperationDelete("data/beta/"), CommitOperationDelete("README.md")]
    ops.append(CommitOperationAdd("données é.txt", b"x"))
    api.create_commit(REPO, ops, commit_message="prune", repo_type="dataset")
    assert api.list_repo_files(REPO, repo_type="dataset") == [".gitattributes", "data/alpha.parquet", "données é.txt"]
    assert Path(api.hf_hub_download(REPO, "données é.txt", repo_type="dataset")).read_bytes() == b"x"
    broken = [CommitOperationAdd("new.txt", b"n"), CommitOperationDelete("ñope.txt")]
    with pytest.raises(RemoteEntryNotFoundError):  # deleting a missing file fails the whole commit
        api.create_commit(REPO, broken, commit_message="broken", repo_type="dataset")
    assert api.list_repo_commits(REPO, repo_type="dataset")[0].title == "prune"
    assert "new.txt" not in api.list_repo_files(REPO, repo_type="dataset")


def test_repo_info_pins_a_commit_sha(api, dataset):
    first = api.repo_info(REPO, repo_type="dataset").sha
    push(api, {"data/gamma.parquet": b"PAR1"}, "add gamma")
    second = api.repo_info(REPO, repo_type="dataset").sha
    assert second != first
    pinned = api.repo_info(REPO, repo_type="dataset", revision=first, files_metadata=True)
    assert pinned.sha == first and "data/gamma.parquet" not in {s.rfilename for s in pinned.siblings}
    assert {s.rfilename: s.size for s in pinned.siblings}["data/alpha.parquet"] == len(dataset["data/alpha.parquet"])
    assert pinned.card_data["configs"][0]["config_name"] == "alpha"
    assert api.list_repo_files(REPO, repo_type="dataset", revision=first) == [".gitattributes", *sorted(dataset)]
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(REPO, repo_type="dataset", revision="f" * 40)


def test_list_repo_tree_recursive_expand_and_paging(hub, api, dataset):
    root = {e.path: type(e).__name__ for e in api.list_repo_tree(REPO, repo_type="dataset")}
    assert root == {"data": "RepoFolder", ".gitattributes": "RepoFile", "README.md": "RepoFile"}
    every = {e.path for e in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)}
    assert every == {".gitattributes", "data", "data/beta", *dataset}
    [beta0, beta1] = api.list_repo_tree(REPO, "data/beta", repo_type="dataset", expand=True)
    assert beta0.size == len(dataset["data/beta/0.parquet"]) and beta0.last_commit.title == "add data"
    assert beta1.security.safe
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(REPO, "nope", repo_type="dataset"))
    hub.tree_page_size = 2
    hub.clear_log()
    assert {e.path for e in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)} == every
    assert [e.route for e in hub.log] == ["tree"] * 4  # 7 entries, 2 a page, pages chained by the Link header


def test_paths_info(api, dataset):
    infos = api.get_paths_info(REPO, ["README.md", "data", "missing.txt"], repo_type="dataset")
    assert [(type(i).__name__, i.path) for i in infos] == [("RepoFile", "README.md"), ("RepoFolder", "data")]


def test_hf_hub_download_and_snapshot(hub, api, dataset, tmp_path):
    sha = api.repo_info(REPO, repo_type="dataset").sha
    hub.clear_log()
    kwargs = dict(repo_type="dataset", endpoint=hub.url, cache_dir=tmp_path / "cache")
    path = hf_hub_download(REPO, "data/alpha.parquet", revision=sha, **kwargs)
    assert Path(path).read_bytes() == dataset["data/alpha.parquet"]
    assert [(e.method, e.status) for e in hub.log] == [("HEAD", 200), ("GET", 200)]
    hub.clear_log()
    assert hf_hub_download(REPO, "data/alpha.parquet", revision=sha, **kwargs) == path
    assert hub.log == []  # pinned to a commit sha and cached: no request at all
    folder = Path(snapshot_download(REPO, **kwargs))
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [".gitattributes", *sorted(dataset)]


def test_hffs_reads_one_row_group_with_range_requests(hub, api):
    api.create_repo(REPO, repo_type="dataset")
    data = parquet_bytes(200_000, 4000)  # ~4 MB, 50 row groups sorted by id
    push(api, {"data/big.parquet": data})
    fs = HfFileSystem(endpoint=hub.url, token=False, block_size=64 * 1024)
    assert fs.glob(f"datasets/{REPO}/data/*.parquet") == [f"datasets/{REPO}/data/big.parquet"]
    assert fs.info(f"datasets/{REPO}/data/big.parquet")["size"] == len(data)
    hub.clear_log()
    with fs.open(f"datasets/{REPO}/data/big.parquet") as f:
        table = pq.ParquetFile(f).read_row_group(17, columns=["id", "name"])
    assert table["id"].to_pylist() == list(range(17 * 4000, 18 * 4000))
    reads = [e for e in hub.log if e.route == "resolve"]
    assert reads and all(e.range and e.status == 206 for e in reads)
    assert hub.bytes_served("/datasets/ns/data/resolve/") < 0.05 * len(data), hub.bytes_served()


def test_load_dataset_in_a_subprocess(hub, dataset, tmp_path):
    code = (
        "import datasets, json; d = datasets.load_dataset('ns/data', 'beta', split='train');"
        "print(json.dumps({'rows': d.num_rows, 'ids': sorted(d['id'])}))"
    )
    env = hub.client_env(tmp_path / "sub_home")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1]) == {"rows": 100, "ids": list(range(100))}
    assert hub.log and not any(e.authorization for e in hub.log)  # reading never needs a token
    assert not [e for e in hub.log if e.route is None]  # every request was one the server knows


def test_load_dataset_in_process(hub, dataset):
    datasets = pytest.importorskip("datasets")
    alpha = datasets.load_dataset(REPO, "alpha", split="train")
    assert alpha.num_rows == 3000 and alpha[2999]["name"] == "row-0002999"


def test_point_client_at_patches_implicit_clients(hub, dataset, tmp_path):
    assert HfApi().repo_info(REPO, repo_type="dataset").id == REPO  # no endpoint argument anywhere
    path = hf_hub_download(REPO, "README.md", repo_type="dataset")
    assert path.startswith(str(tmp_path)) and Path(path).read_text() == CARD
    assert HfFileSystem().ls(f"datasets/{REPO}/data/beta", detail=False)[0].endswith("0.parquet")


def test_missing_repo_revision_and_file_map_to_client_errors(hub, api, dataset, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("ns/missing", repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("ns/missing", "x", repo_type="dataset", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "missing.parquet", repo_type="dataset", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "README.md", repo_type="dataset", revision="v9", endpoint=hub.url, cache_dir=tmp_path)
    assert not api.file_exists(REPO, "missing.parquet", repo_type="dataset")
    fs = HfFileSystem(endpoint=hub.url, token=False)
    with pytest.raises(FileNotFoundError):
        fs.info(f"datasets/{REPO}/missing.parquet")
    with pytest.raises(FileNotFoundError):
        fs.ls("datasets/ns/missing")


def test_failed_commits_never_leave_a_half_written_commit(hub, api, dataset):
    head = api.repo_info(REPO, repo_type="dataset").sha
    files = {"data/gamma.parquet": parquet_bytes(50, 10), "data/delta.parquet": parquet_bytes(60, 10)}
    for mode, error in [(500, HfHubHTTPError), (503, HfHubHTTPError), ("drop", httpx2.RemoteProtocolError)]:
        fault = hub.fail("POST", "/commit/", mode=mode)
        with pytest.raises(error):
            push(api, files, parent_commit=head)
        assert fault.hits == 1 and api.repo_info(REPO, repo_type="dataset").sha == head
        assert api.list_repo_files(REPO, repo_type="dataset") == [".gitattributes", *sorted(dataset)]
    retried = push(api, files, parent_commit=head)  # the retry lands, as one commit with both files
    assert api.list_repo_commits(REPO, repo_type="dataset")[0].commit_id == retried
    assert {"data/gamma.parquet", "data/delta.parquet"} <= set(api.list_repo_files(REPO, repo_type="dataset"))


def test_commit_that_lands_but_loses_its_answer_and_stale_parent(hub, api, dataset):
    head = api.repo_info(REPO, repo_type="dataset").sha
    hub.fail("POST", "/commit/", mode="truncate")  # processed, then the answer is cut halfway
    with pytest.raises(httpx2.RemoteProtocolError):
        push(api, {"data/gamma.parquet": b"gamma"}, parent_commit=head)
    landed = api.repo_info(REPO, repo_type="dataset").sha
    assert landed != head and "data/gamma.parquet" in api.list_repo_files(REPO, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:  # a writer still holding the old head is refused, like on the Hub
        api.create_commit(
            REPO, [CommitOperationDelete("README.md")], commit_message="x", repo_type="dataset", parent_commit=head
        )
    assert err.value.response.status_code == 412 and "A commit has happened since" in str(err.value)
    assert api.repo_info(REPO, repo_type="dataset").sha == landed


def test_range_read_retries_through_a_503(hub, dataset):
    fs = HfFileSystem(endpoint=hub.url, token=False, block_size=1024)
    with fs.open(f"datasets/{REPO}/data/alpha.parquet") as f:
        hub.fail("GET", "/resolve/", mode=503)
        assert f.read(4) == b"PAR1"  # http_backoff retries after 1 s
    assert [e.status for e in hub.log if e.route == "resolve"] == [503, 206]


def test_offline_serves_cached_files_and_refuses_the_rest(hub, api, dataset, tmp_path):
    kwargs = dict(repo_type="dataset", endpoint=hub.url, cache_dir=tmp_path / "cache")
    path = hf_hub_download(REPO, "README.md", **kwargs)
    with hub.offline():
        assert hf_hub_download(REPO, "README.md", **kwargs) == path  # a branch resolved from the cached ref
        with pytest.raises(httpx2.ConnectError):
            api.repo_info(REPO, repo_type="dataset")
    assert api.repo_info(REPO, repo_type="dataset").id == REPO


def test_authorization_is_recorded_never_required(hub, dataset):
    HfApi(endpoint=hub.url, token="hf_not_a_real_token").repo_info(REPO, repo_type="dataset")
    HfApi(endpoint=hub.url, token=False).repo_info(REPO, repo_type="dataset")
    assert [e.authorization for e in hub.log] == [True, False]


def test_lfs_upload_path_with_xet_disabled(hub_server, tmp_path, monkeypatch):
    hub_server.lfs_threshold = 1024
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    api = HfApi(endpoint=hub_server.url, token=False)
    api.create_repo(REPO, repo_type="dataset")
    big = parquet_bytes(2000, 500)
    push(api, {"data/big.parquet": big, "small.txt": b"tiny"})
    routes = [e.route for e in hub_server.log]
    assert routes[-5:] == ["preupload", "lfs_batch", "lfs_put", "lfs_verify", "commit"]
    assert sorted(hub_server.uploaded_paths()) == ["data/big.parquet", "small.txt"]
    [entry] = [e for e in api.list_repo_tree(REPO, "data", repo_type="dataset")]
    assert entry.lfs.size == len(big) and entry.blob_id != entry.lfs.sha256
    path = hf_hub_download(REPO, "data/big.parquet", repo_type="dataset", endpoint=hub_server.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == big
    hub_server.clear_log()
    push(api, {"data/big.parquet": big, "other.txt": b"x"})  # unchanged LFS file: skipped by its sha256
    assert hub_server.uploaded_paths() == ["other.txt"]


def test_lfs_answer_with_xet_enabled_fails_without_committing(tmp_path):
    # Checked without importing: hf_xet picks its log folder from HF_HOME when first imported.
    if importlib.util.find_spec("hf_xet") is None or constants.HF_HUB_DISABLE_XET:
        pytest.skip("needs hf_xet installed and enabled")
    with HubServer(lfs_threshold=1) as server, point_client_at(server.url, tmp_path):
        api = HfApi(endpoint=server.url, token=False)
        api.create_repo(REPO, repo_type="dataset")
        with pytest.raises(Exception, match="xet-write-token"):  # hf_xet wants a Xet token, which we refuse
            push(api, {"a.bin": b"some bytes"})
        assert api.list_repo_files(REPO, repo_type="dataset") == [".gitattributes"]
