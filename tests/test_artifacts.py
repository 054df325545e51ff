import os
import stat
import errno
import re

import pandas as pd
import pytest

from acqsynth import artifacts


def test_write_table_round_trip_and_missing_columns(tmp_path):
    path = tmp_path / "t.parquet"
    artifacts.write_table(path, pd.DataFrame({"id": ["a"], "x": [1]}))
    artifacts.write_json(tmp_path / "m.json", {})
    umask = os.umask(0)
    os.umask(umask)
    for written in (path, tmp_path / "m.json"):  # as open() would make them, not mkstemp's 0600
        assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask
    assert artifacts.read_table(path, ["id", "x"])["x"].tolist() == [1]
    with pytest.raises(artifacts.ArtifactError, match=r"t.parquet: missing columns \['question'\]"):
        artifacts.read_table(path, ["id", "question"])


def test_truncated_table_names_the_file(tmp_path):
    path = tmp_path / "t.parquet"
    artifacts.write_table(path, pd.DataFrame({"id": ["a"] * 100}))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(artifacts.ArtifactError, match="t.parquet: not a readable parquet table"):
        artifacts.read_table(path)
    with pytest.raises(artifacts.ArtifactError, match="not found"):
        artifacts.read_table(tmp_path / "absent.parquet")


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    artifacts.write_json(path, {"a": 1})

    def broken_replace(*_):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.os, "replace", broken_replace)
    with pytest.raises(OSError):
        artifacts.write_json(path, {"a": 2})
    assert artifacts.read_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


@pytest.mark.parametrize("writer", ["json", "table"])
def test_a_full_disk_names_the_artifact_and_keeps_the_last_good_one(tmp_path, monkeypatch, writer):
    path = tmp_path / ("m.json" if writer == "json" else "t.parquet")
    write = {"json": lambda: artifacts.write_json(path, {"a": 1}),
             "table": lambda: artifacts.write_table(path, pd.DataFrame({"a": [1]}))}[writer]
    write()
    before = path.read_bytes()

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as the OS raises it: no file name

    monkeypatch.setattr(artifacts.os, "fsync", full)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.raises(OSError, match=rf"No space left on device: '{re.escape(str(path))}'") as raised:
        write()
    assert raised.value.errno == errno.ENOSPC  # still a full disk, which no retry mends
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_promote_directory_replaces_the_old_version(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.bin").write_text("old")
    staged = artifacts.staging_path(final)
    staged.mkdir()
    (staged / "new.bin").write_text("new")
    artifacts.promote(staged, final)
    assert [p.name for p in final.iterdir()] == ["new.bin"]
    assert not staged.exists()


def test_content_hash_changes_with_content_and_names(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a").write_text("1")
    first = artifacts.content_hash(folder)
    (folder / "a").write_text("2")
    second = artifacts.content_hash(folder)
    (folder / "a").rename(folder / "b")
    assert len({first, second, artifacts.content_hash(folder)}) == 3


def test_exact_columns_name_the_unexpected_ones(tmp_path):
    path = tmp_path / "seed.parquet"
    artifacts.write_table(path, pd.DataFrame({"id": ["a"], "question": ["q"], "notes": ["?"]}))
    assert list(artifacts.read_table(path, ["id", "question"]).columns) == ["id", "question", "notes"]
    with pytest.raises(artifacts.ArtifactError, match=r"seed.parquet: unexpected columns \['notes'\]"):
        artifacts.read_table(path, ["id", "question"], exact=True)


def test_a_large_artifacts_hash_is_remembered_until_a_file_of_it_changes(tmp_path, monkeypatch):
    import sqlite3

    cache = tmp_path / "hashes.sqlite"
    monkeypatch.setattr(artifacts, "CACHED_HASH_BYTES", 1000)
    monkeypatch.setenv("ACQSYNTH_HASH_CACHE", str(cache))
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 2000)
    (model / "config.json").write_text("{}")
    true = artifacts.content_hash(model)
    monkeypatch.setenv("ACQSYNTH_HASH_CACHE", "")
    assert artifacts.content_hash(model) == true  # the same value as without the cache
    monkeypatch.setenv("ACQSYNTH_HASH_CACHE", str(cache))
    with sqlite3.connect(cache) as db:  # what the cache says is what is used, while no file has changed
        db.execute("UPDATE hashes SET digest = 'remembered'")
    assert artifacts.content_hash(model) == "remembered"
    (model / "config.json").write_text("{}")  # rewritten with the same bytes: hashed again
    assert artifacts.content_hash(model) == true
    (model / "weights.bin").write_bytes(b"v" * 2000)  # same size, new content
    changed = artifacts.content_hash(model)
    assert changed not in (true, "remembered")
    assert artifacts.content_hash(tmp_path / "model" / "config.json") != changed  # small: never cached
    cache.write_bytes(b"not a database")  # a broken cache is only skipped
    assert artifacts.content_hash(model) == changed
