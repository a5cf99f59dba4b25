"""Model archives: pack a model directory into a SageMaker ``model.tar.gz``, extract one safely,
upload one to S3.

Layout written by :func:`pack_model` (the layout SageMaker framework containers expect)::

    model.tar.gz
      model.joblib, metadata.json, ...   model files at the archive root
      code/inference.py                  handler script (model_fn/input_fn/predict_fn/output_fn)
      code/requirements.txt              optional

Packing is deterministic: members are sorted, timestamps, owners and modes are fixed and the gzip
header carries no name or time, so the same inputs always give the same bytes (and the same S3 ETag).

:func:`safe_extract` treats an archive as hostile input: it rejects absolute paths, ``..``
components, links leaving the destination, device files, FIFOs and sparse files, too many members
and archives that expand past a byte cap (declared sizes *and* bytes actually decompressed are
counted, while streaming: :class:`ArchiveTooLarge`), raising :class:`UnsafeArchiveError` naming the
offending member. Extraction goes into a temporary directory
beside the destination that is renamed into place only when complete.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_MEMBERS", "ArchiveError", "ArchiveTooLarge", "UnsafeArchiveError",
           "model_data_url", "pack_model", "safe_extract", "upload_model"]

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB of extracted file data
DEFAULT_MAX_MEMBERS = 10_000

# Fixed metadata written for every member (2020-01-01T00:00:00Z; tar has no "unknown" time).
_FIXED_MTIME = 1_577_836_800
_SKIPPED_NAMES = {"__pycache__", ".DS_Store", ".ipynb_checkpoints"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_CHUNK = 1024 * 1024
# Headers (512 bytes each, plus PAX/GNU long-name records) and padding are not file data; allow them
# on top of max_bytes when bounding the decompressed stream.
_HEADER_ALLOWANCE_PER_MEMBER = 4 * 512


class ArchiveError(ValueError):
    """The archive cannot be read (not a tar archive, truncated or corrupt)."""


class UnsafeArchiveError(ArchiveError):
    """The archive contains a member that must not be extracted.

    ``member`` is the offending member's name as stored in the archive (or a description such as
    ``"<archive>"`` when the problem is not tied to one member); ``reason`` says what is wrong.
    """

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__(f"unsafe archive member {member!r}: {reason}")


class ArchiveTooLarge(UnsafeArchiveError):
    """The archive unpacks to more than ``max_bytes`` (declared, written or decompressed)."""


# --------------------------------------------------------------------------------------------- pack


def pack_model(
    model_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    code_dir: str | os.PathLike[str] | None = None,
    requirements: str | os.PathLike[str] | Sequence[str] | None = None,
) -> Path:
    """Write ``model_dir`` (plus ``code_dir`` as ``code/``) to a deterministic ``model.tar.gz``.

    ``model_dir``'s files go at the archive root (a ``code/`` folder already inside it is kept).
    ``code_dir``'s files go under ``code/``. ``requirements`` is the path of a requirements file or a
    sequence of requirement lines; it becomes ``code/requirements.txt``. ``__pycache__`` folders and
    ``*.pyc`` files are left out. Symlinks are followed only when they point inside their own tree.
    The archive is written to a temporary file and renamed onto ``out_path``; returns ``out_path``.
    """
    model_root = _existing_dir(model_dir, "model_dir")
    out = Path(out_path)
    if out.is_dir():
        raise ValueError(
            f"out_path {str(out)!r} is a directory; pass the archive file to write, e.g. "
            f"{str(out / 'model.tar.gz')!r} (signature: pack_model(model_dir, out_path, code_dir=None, "
            "requirements=None))"
        )
    entries: dict[str, Path | bytes | None] = {}  # arcname -> file path, literal bytes, or None (dir)
    _add_tree(entries, model_root, PurePosixPath(), out.resolve())
    if code_dir is not None:
        code_root = _existing_dir(code_dir, "code_dir")
        _add_entry(entries, "code", None)
        _add_tree(entries, code_root, PurePosixPath("code"), out.resolve())
    if requirements is not None:
        _add_entry(entries, "code", None)
        _add_entry(entries, "code/requirements.txt", _requirements_bytes(requirements))

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for arcname in sorted(entries):
                _write_member(tar, arcname, entries[arcname])
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out


def _existing_dir(path: str | os.PathLike[str], what: str) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{what} {str(root)!r} is not a directory; pass the folder holding the files")
    return root


def _add_entry(entries: dict[str, Path | bytes | None], arcname: str, source: Path | bytes | None) -> None:
    previous = entries.get(arcname, ...)
    if previous is ...:
        entries[arcname] = source
    elif previous is None and source is None:
        return  # the same directory reached twice
    else:
        raise ValueError(
            f"archive member {arcname!r} would be written twice (from model_dir and code_dir/requirements); "
            "remove one of them"
        )


def _add_tree(entries: dict[str, Path | bytes | None], root: Path, prefix: PurePosixPath, out: Path) -> None:
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_NAMES)
        for name in list(dirnames):
            path = here / name
            if path.is_symlink():
                _check_link_inside(path, real_root)
                dirnames.remove(name)
                # A symlinked folder inside the tree: pack its files under the link's name.
                for sub in sorted(p for p in path.rglob("*") if p.is_file()):
                    rel = rel_dir / name / sub.relative_to(path)
                    if not _skipped(rel):
                        _add_entry(entries, (prefix / PurePosixPath(*rel.parts)).as_posix(), sub)
                continue
            _add_entry(entries, (prefix / PurePosixPath(*(rel_dir / name).parts)).as_posix(), None)
        for name in sorted(filenames):
            path = here / name
            rel = rel_dir / name
            if _skipped(rel):
                continue
            if path.is_symlink():
                _check_link_inside(path, real_root)
            if not path.is_file():
                raise ValueError(f"{str(path)!r} is not a regular file (device, socket or FIFO); remove it")
            if path.resolve() == out:
                continue  # the archive being written lives inside model_dir
            _add_entry(entries, (prefix / PurePosixPath(*rel.parts)).as_posix(), path)


def _skipped(rel: Path) -> bool:
    return any(part in _SKIPPED_NAMES for part in rel.parts) or rel.name.endswith(_SKIPPED_SUFFIXES)


def _check_link_inside(path: Path, real_root: Path) -> None:
    target = path.resolve()
    if not target.is_relative_to(real_root):
        raise ValueError(
            f"{str(path)!r} is a symlink to {str(target)!r}, outside {str(real_root)!r}; "
            "copy the file into the model folder instead"
        )


def _requirements_bytes(requirements: str | os.PathLike[str] | Sequence[str]) -> bytes:
    if isinstance(requirements, str | os.PathLike):
        path = Path(requirements)
        if not path.is_file():
            raise FileNotFoundError(
                f"requirements file {str(path)!r} not found; pass a path or a list of requirement lines"
            )
        return path.read_bytes()
    lines = [str(line).strip() for line in requirements]
    return ("\n".join(line for line in lines if line) + "\n").encode()


def _write_member(tar: tarfile.TarFile, arcname: str, source: Path | bytes | None) -> None:
    info = tarfile.TarInfo(arcname)
    info.mtime = _FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if source is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        return
    if isinstance(source, bytes):
        info.size = len(source)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(source))
        return
    st = source.stat()
    info.size = st.st_size
    info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    with source.open("rb") as fh:
        tar.addfile(info, fh)


# ------------------------------------------------------------------------------------------ extract


class _BoundedReader(io.RawIOBase):
    """Reads a decompressed stream and fails once more than ``limit`` bytes came out of it."""

    def __init__(self, stream: BinaryIO, limit: int, state: _ExtractState) -> None:
        self._stream = stream
        self._limit = limit
        self._state = state
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self._stream.read(min(len(view), self._limit - self.consumed + 1))
        self.consumed += len(data)
        if self.consumed > self._limit:
            raise ArchiveTooLarge(
                self._state.where(),
                f"archive expands to more than {self._limit} bytes of tar data "
                f"(cap {self._state.max_bytes} bytes of files); possible decompression bomb",
            )
        view[: len(data)] = data
        return len(data)


class _ExtractState:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.current: str | None = None
        self.previous: str | None = None
        self.declared = 0
        self.written = 0
        self.members = 0

    def where(self) -> str:
        if self.current is not None:
            return self.current
        return f"<header after {self.previous!r}>" if self.previous is not None else "<archive>"


def safe_extract(
    tar_path: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
    replace: bool = False,
) -> Path:
    """Extract ``tar_path`` (tar, tar.gz, tar.bz2 or tar.xz) into ``dest_dir`` and return it.

    Raises :class:`UnsafeArchiveError` (a ``ValueError``) naming the member for: absolute paths,
    ``..`` components, symlinks or hardlinks resolving outside ``dest_dir``, device files, FIFOs and
    other special members, duplicate names, more than ``max_members`` members, and more than
    ``max_bytes`` of file data (declared in headers or actually written) or of decompressed tar
    stream. :class:`ArchiveError` for unreadable archives. Nothing is left behind on failure.

    ``dest_dir`` must not exist (or be an empty directory) unless ``replace=True``, in which case the
    old directory is swapped out only after the new one is complete.
    """
    if max_bytes < 0 or max_members < 1:
        raise ValueError(f"max_bytes must be >= 0 and max_members >= 1 (got {max_bytes}, {max_members})")
    archive = Path(tar_path)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {str(archive)!r} not found")
    dest = Path(dest_dir).absolute()
    if dest.exists() and not replace and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(
            f"destination {str(dest)!r} already exists and is not empty; remove it or pass replace=True"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        _extract_into(archive, tmp, max_bytes=max_bytes, max_members=max_members)
        os.chmod(tmp, 0o755)
        _move_into_place(tmp, dest, replace=replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _move_into_place(tmp: Path, dest: Path, *, replace: bool) -> None:
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        dest.rmdir()
    if not dest.exists() and not dest.is_symlink():
        os.rename(tmp, dest)
        return
    if not replace:  # appeared meanwhile
        raise FileExistsError(f"destination {str(dest)!r} appeared during extraction; not overwriting it")
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    old.rmdir()
    os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def _open_decompressed(archive: Path) -> BinaryIO:
    with archive.open("rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(archive, "rb")  # type: ignore[return-value]
    if magic[:3] == b"BZh":
        return bz2.open(archive, "rb")  # type: ignore[return-value]
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(archive, "rb")  # type: ignore[return-value]
    return archive.open("rb")


def _extract_into(archive: Path, root: Path, *, max_bytes: int, max_members: int) -> None:
    state = _ExtractState(max_bytes)
    stream_limit = max_bytes + (max_members + 2) * _HEADER_ALLOWANCE_PER_MEMBER + 10 * 512
    real_root = Path(os.path.realpath(root))
    seen: set[str] = set()
    try:
        with (
            _open_decompressed(archive) as decompressed,
            io.BufferedReader(_BoundedReader(decompressed, stream_limit, state), _CHUNK) as bounded,
            tarfile.open(fileobj=bounded, mode="r|") as tar,
        ):
            for member in tar:
                state.current = member.name
                state.members += 1
                if state.members > max_members:
                    raise UnsafeArchiveError(
                        member.name, f"archive has more than {max_members} members (max_members)"
                    )
                _extract_member(tar, member, root, real_root, state, seen)
                state.previous, state.current = member.name, None
    except UnsafeArchiveError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a filesystem problem on our side (disk full, permissions), not a bad archive
        if state.members == 0 and state.previous is None:
            raise ArchiveError(f"{str(archive)!r} is not a readable tar archive: {exc}") from exc
        raise ArchiveError(
            f"{str(archive)!r} is truncated or corrupt near member {state.where()!r}: {exc}"
        ) from exc


def _safe_relpath(name: str) -> PurePosixPath:
    """Return the member's relative path, or raise if it is absolute or climbs with ``..``."""
    if name.startswith(("/", "\\")) or _has_drive(name):
        raise UnsafeArchiveError(name, "absolute path; archive members must be relative")
    if "\x00" in name:
        raise UnsafeArchiveError(name, "NUL byte in name")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(name, "path contains a '..' component")
    return PurePosixPath(*parts) if parts else PurePosixPath()


def _has_drive(name: str) -> bool:
    return len(name) > 1 and name[1] == ":" and name[0].isalpha()


def _inside(path: str, real_root: Path) -> bool:
    resolved = os.path.realpath(path)
    return resolved == str(real_root) or resolved.startswith(str(real_root) + os.sep)


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root: Path,
    real_root: Path,
    state: _ExtractState,
    seen: set[str],
) -> None:
    name = member.name
    rel = _safe_relpath(name)
    kind = _member_kind(member)
    if rel == PurePosixPath():
        if kind == "dir":
            return  # the archive's own "./" entry
        raise UnsafeArchiveError(name, "empty member name")
    key = rel.as_posix()
    if key in seen and kind != "dir":
        raise UnsafeArchiveError(name, "duplicate member name; refusing to overwrite an extracted entry")
    seen.add(key)

    target = root / key
    # The parent must resolve inside the root (earlier symlinks could redirect it) and the entry
    # itself must not already be a link we would write through.
    if not _inside(str(target.parent), real_root):
        raise UnsafeArchiveError(
            name, "parent directory resolves outside the destination (through a symlink)"
        )
    if target.is_symlink():
        raise UnsafeArchiveError(name, "would write through a symlink extracted earlier")
    if os.path.lexists(target) and (kind != "dir" or not target.is_dir()):
        raise UnsafeArchiveError(
            name, "an entry with this path was already extracted (duplicate or reached through a symlink)"
        )

    if kind not in ("file", "dir", "symlink", "hardlink"):
        raise UnsafeArchiveError(name, f"{kind} members are not allowed in a model archive")
    if member.size < 0:
        raise UnsafeArchiveError(name, "negative size in header")
    link_source: Path | None = None
    if kind == "file":
        state.declared += member.size
        if member.issparse():  # a few hundred bytes could claim any size (holes): never needed in a model
            raise UnsafeArchiveError(name, "sparse files are not allowed in a model archive")
        if state.declared > state.max_bytes:
            raise ArchiveTooLarge(
                name,
                f"declared size {member.size} brings the archive to {state.declared} bytes, "
                f"over the {state.max_bytes}-byte cap (max_bytes)",
            )
    elif kind == "symlink":
        _check_symlink(member, target, real_root)
    elif kind == "hardlink":
        link_source = _check_hardlink(member, root, real_root)

    # Extra layer after our own checks: Python's 'data' filter (3.11.4+) must agree too.
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        try:
            data_filter(member, str(root))
        except tarfile.FilterError as exc:
            raise UnsafeArchiveError(name, f"rejected by tarfile's data filter: {exc}") from exc

    if kind == "dir":
        _makedirs(target, real_root, name)
        return
    _makedirs(target.parent, real_root, name)
    if kind == "file":
        _write_file(tar, member, target, state)
    elif kind == "symlink":
        os.symlink(member.linkname, target)
    else:
        assert link_source is not None
        _copy_hardlink(member, link_source, target, state)


# Tar member kinds in the order tarfile's predicates are asked (the first that holds names it).
_MEMBER_KINDS = (
    ("isreg", "file"),
    ("isdir", "dir"),
    ("issym", "symlink"),
    ("islnk", "hardlink"),
    ("ischr", "character device"),
    ("isblk", "block device"),
    ("isfifo", "FIFO"),
)


def _member_kind(member: tarfile.TarInfo) -> str:
    for predicate, kind in _MEMBER_KINDS:
        if getattr(member, predicate)():
            return kind
    return f"special (type {member.type!r})"


def _makedirs(path: Path, real_root: Path, name: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    except (FileExistsError, NotADirectoryError):
        raise UnsafeArchiveError(
            name, "a parent of this path was extracted as a file, not a directory"
        ) from None
    if not _inside(str(path), real_root):
        raise UnsafeArchiveError(name, "directory resolves outside the destination")


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, state: _ExtractState) -> None:
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        raise UnsafeArchiveError(member.name, "no data for regular file")
    mode = 0o755 if member.mode & 0o111 else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        raise UnsafeArchiveError(
            member.name,
            "an entry with this path was already extracted (duplicate or reached through a symlink)",
        ) from None
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = source.read(_CHUNK)
            if not chunk:
                break
            state.written += len(chunk)
            if state.written > state.max_bytes:
                raise ArchiveTooLarge(
                    member.name,
                    f"extracted data exceeds the {state.max_bytes}-byte cap (max_bytes) "
                    "although the headers declared less",
                )
            out.write(chunk)


def _check_symlink(member: tarfile.TarInfo, target: Path, real_root: Path) -> None:
    link = member.linkname
    if not link or link.startswith(("/", "\\")) or _has_drive(link):
        raise UnsafeArchiveError(member.name, f"symlink to absolute or empty path {link!r}")
    if not _inside(os.path.join(target.parent, link), real_root):
        raise UnsafeArchiveError(member.name, f"symlink to {link!r} points outside the destination")


def _check_hardlink(member: tarfile.TarInfo, root: Path, real_root: Path) -> Path:
    try:
        link_rel = _safe_relpath(member.linkname)
    except UnsafeArchiveError as exc:
        raise UnsafeArchiveError(member.name, f"hardlink to {member.linkname!r}: {exc.reason}") from None
    source = root / link_rel.as_posix()
    if link_rel == PurePosixPath() or not _inside(str(source), real_root):
        raise UnsafeArchiveError(
            member.name, f"hardlink to {member.linkname!r} points outside the destination"
        )
    if source.is_symlink() or not source.is_file():
        raise UnsafeArchiveError(
            member.name, f"hardlink to {member.linkname!r}, which is not a regular file extracted earlier"
        )
    return source


def _copy_hardlink(member: tarfile.TarInfo, source: Path, target: Path, state: _ExtractState) -> None:
    """Materialise a hardlink as a copy (its bytes count toward the cap like any file's)."""
    size = source.stat().st_size
    state.declared += size
    state.written += size
    if state.written > state.max_bytes:
        raise ArchiveTooLarge(
            member.name, f"hardlinked data exceeds the {state.max_bytes}-byte cap (max_bytes)"
        )
    shutil.copyfile(source, target, follow_symlinks=False)
    os.chmod(target, stat.S_IMODE(source.stat().st_mode))


# ------------------------------------------------------------------------------------------- upload


def model_data_url(bucket: str, key: str) -> str:
    """Return ``s3://bucket/key`` for a CreateModel ``ModelDataUrl`` (a trailing ``/`` keeps a prefix)."""
    _check_bucket_key(bucket, key)
    return f"s3://{bucket}/{key}"


def upload_model(archive_path: str | os.PathLike[str], s3_client: Any, bucket: str, key: str) -> str:
    """Upload a model archive with the given boto3 S3 client; return its ``s3://bucket/key`` URL."""
    _check_bucket_key(bucket, key)
    if key.endswith("/"):
        raise ValueError(f"key {key!r} ends with '/'; name the object, e.g. {key + 'model.tar.gz'!r}")
    path = Path(archive_path)
    if not path.is_file():
        raise FileNotFoundError(f"model archive {str(path)!r} not found; build it with pack_model() first")
    s3_client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": "application/x-gzip"})
    return model_data_url(bucket, key)


def _check_bucket_key(bucket: str, key: str) -> None:
    if not bucket or "/" in bucket or bucket.startswith("s3:"):
        raise ValueError(f"bucket must be a plain bucket name like 'my-bucket', got {bucket!r}")
    if not key or key.startswith("/"):
        raise ValueError(f"key must be a non-empty object key without a leading '/', got {key!r}")
