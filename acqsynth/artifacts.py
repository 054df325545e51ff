"""Artifact I/O: atomic writes, staged promotion, content hashes and table reading with clear errors."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


class ArtifactError(ValueError):
    """An artifact is missing or malformed; the message names the file and what was expected."""


class WorkspaceBusy(RuntimeError):
    """Another acqsynth process holds the workspace."""


LOCK_FILE = ".acqsynth.lock"


@contextmanager
def workspace_lock(root: Path, shared: bool = False) -> Iterator[None]:
    """One process at a time writes a workspace: `acqsynth run`, `stage` and `compare` hold this lock (comparisons
    that only read the shared stages' outputs hold it `shared`, so several can split the seeds). The kernel drops
    the lock with its process, so a killed run leaves nothing stale to take over."""
    path = Path(root) / LOCK_FILE
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise WorkspaceBusy(f"{path}: the workspace is in use by {holder}; wait for it to finish (the lock goes "
                            "with its process)") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({' '.join(sys.argv) or sys.executable})\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _naming(error: OSError, path: Path) -> OSError:
    """error, naming path where the OS named nothing (a full disk fails a write with no file name)."""
    if error.filename is None:
        error.filename = str(path)
    return error


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# What open() would give a new file (0644 under the usual umask); mkstemp's temporary files are 0600.
_FILE_MODE = 0o666 & ~_umask()


def _temporary_beside(path: Path) -> tuple[int, str]:
    """A new temporary file in path's directory (made if need be), with the mode of a normally written file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, _FILE_MODE)
    except OSError as error:
        raise _naming(error, path) from None
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(error, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; run the stage that writes it first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path}: not valid UTF-8 JSON: {error}") from None


def staging_path(path: Path) -> Path:
    """Where a stage writes an artifact before its quality gate lets it replace `path`."""
    return path.parent / f".{path.name}.staging"


def promote(staged: Path, final: Path) -> None:
    """Replace `final` with `staged`. Files are swapped atomically; a directory is swapped by two renames,
    keeping the old one until the new one is in place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if staged.is_file():
        os.replace(staged, final)
        return
    retired = final.parent / f".{final.name}.retired"
    shutil.rmtree(retired, ignore_errors=True)
    if final.exists():
        os.replace(final, retired)
    os.replace(staged, final)
    shutil.rmtree(retired, ignore_errors=True)


def discard(staged: Path) -> None:
    if staged.is_dir():
        shutil.rmtree(staged, ignore_errors=True)
    else:
        staged.unlink(missing_ok=True)


def write_table(path: Path, frame: pd.DataFrame) -> None:
    """Parquet, written atomically."""
    fd, tmp = _temporary_beside(path)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(error, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_table(path: Path, required_columns: Iterable[str] = (), exact: bool = False) -> pd.DataFrame:
    """A parquet table with at least `required_columns` (with `exact`, those and no others)."""
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; run the stage that writes it first")
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for truncated or foreign files
        raise ArtifactError(f"{path}: not a readable parquet table: {error}") from None
    required_columns = list(required_columns)
    missing = [column for column in required_columns if column not in frame.columns]
    if missing:
        raise ArtifactError(f"{path}: missing columns {missing}; it has {list(frame.columns)}")
    extra = [column for column in frame.columns if column not in required_columns]
    if exact and extra:
        raise ArtifactError(f"{path}: unexpected columns {extra}; expected exactly {required_columns}")
    return frame


def content_hash_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Artifacts this large have their hash remembered (HASH_CACHE): re-reading a model on every cache check costs
# seconds per gigabyte, which DVC avoids the same way.
CACHED_HASH_BYTES = 16 << 20


def hash_cache() -> Path | None:
    """Where content hashes of large artifacts are remembered: $ACQSYNTH_HASH_CACHE, else
    $XDG_CACHE_HOME/acqsynth/content-hashes.sqlite (~/.cache by default); ACQSYNTH_HASH_CACHE="" turns it off."""
    chosen = os.environ.get("ACQSYNTH_HASH_CACHE")
    if chosen is not None:
        return Path(chosen) if chosen else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "acqsynth" / "content-hashes.sqlite"


def _remembered(path: Path, signature: str, compute) -> str:
    """The hash recorded for path under this signature, else `compute()`, recorded. The cache is only an aid: if
    it cannot be read or written, the hash is computed."""
    import sqlite3

    where = hash_cache()
    if where is None:
        return compute()
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(where, timeout=30) as db:
            db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, signature TEXT, digest TEXT)")
            row = db.execute("SELECT digest FROM hashes WHERE path = ? AND signature = ?",
                             (str(path.resolve()), signature)).fetchone()
        if row is not None:
            return row[0]
        digest = compute()
        with sqlite3.connect(where, timeout=30) as db:
            db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?)", (str(path.resolve()), signature, digest))
        return digest
    except (sqlite3.Error, OSError):
        return compute()


def content_hash(path: Path) -> str:
    """sha256 over a file, or over every file of a directory (relative names and bytes, in sorted order). For a
    large artifact it is remembered under the name, size, mtime, ctime and inode of each of its files, which any
    write, rename or replacement changes (so a file changed in place is hashed again)."""
    if path.is_file():
        files = [path]
        base = path.parent
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        base = path
    else:
        raise ArtifactError(f"{path}: not found; cannot hash a missing artifact")

    def compute() -> str:
        digest = hashlib.sha256()
        for file in files:
            digest.update(str(file.relative_to(base)).encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    stats = [(str(file.relative_to(base)), file.stat()) for file in files]
    if sum(stat.st_size for _, stat in stats) < CACHED_HASH_BYTES:
        return compute()
    signature = json.dumps([(name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
                            for name, stat in stats])
    return _remembered(path, hashlib.sha256(signature.encode()).hexdigest(), compute)
