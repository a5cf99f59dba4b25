"""safe_extract refuses every kind of hostile archive, names the member, and leaves nothing behind."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from catkit.build import ArchiveError, UnsafeArchiveError, safe_extract

Adder = Callable[[tarfile.TarFile], None]


def _file(name: str, data: bytes = b"x", *, size: int | None = None) -> Adder:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data) if size is None else size
        tar.addfile(info, io.BytesIO(data))

    return add


def _special(name: str, kind: bytes, linkname: str = "") -> Adder:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        tar.addfile(info)

    return add


def _archive(path: Path, *adders: Adder, compress: bool = True) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for add in adders:
            add(tar)
    path.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1) if compress else buf.getvalue())
    return path


def _assert_nothing_left(parent: Path, dest: Path) -> None:
    assert not dest.exists()
    leftovers = [p.name for p in parent.iterdir() if p.name.startswith(f".{dest.name}.")]
    assert leftovers == []


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A file next to the destination that no archive may touch."""
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    return victim


# Each row: (case id, adders, offending member, reason fragment).
MALICIOUS = [
    ("absolute path", [_file("/tmp/evil.txt")], "/tmp/evil.txt", "absolute"),
    ("dotdot", [_file("../victim.txt", b"pwned")], "../victim.txt", "'..'"),
    ("nested dotdot", [_file("code/../../victim.txt", b"pwned")], "code/../../victim.txt", "'..'"),
    (
        "symlink out (relative)",
        [_special("code/link", tarfile.SYMTYPE, "../../victim.txt")],
        "code/link",
        "outside",
    ),
    ("symlink out (absolute)", [_special("link", tarfile.SYMTYPE, "/etc/passwd")], "link", "absolute"),
    (
        "symlink dir then write through it",
        [_special("d", tarfile.SYMTYPE, ".."), _file("d/victim.txt", b"pwned")],
        "d",
        "outside",
    ),
    ("hardlink out (relative)", [_special("h", tarfile.LNKTYPE, "../victim.txt")], "h", "'..'"),
    ("hardlink out (absolute)", [_special("h", tarfile.LNKTYPE, "/etc/passwd")], "h", "absolute"),
    ("character device", [_special("dev/null", tarfile.CHRTYPE)], "dev/null", "character device"),
    ("block device", [_special("sda", tarfile.BLKTYPE)], "sda", "block device"),
    ("fifo", [_special("pipe", tarfile.FIFOTYPE)], "pipe", "FIFO"),
    (
        "duplicate name",
        [_file("model.joblib", b"a"), _file("model.joblib", b"b")],
        "model.joblib",
        "duplicate",
    ),
]


@pytest.mark.parametrize(("case", "adders", "member", "reason"), MALICIOUS, ids=[m[0] for m in MALICIOUS])
def test_malicious_member_is_rejected_by_name(
    tmp_path: Path, outside: Path, case: str, adders: list[Adder], member: str, reason: str
) -> None:
    archive = _archive(tmp_path / "evil.tar.gz", _file("model.joblib", b"ok"), *adders)
    dest = tmp_path / "model"
    with pytest.raises(UnsafeArchiveError, match=reason) as exc:
        safe_extract(archive, dest)
    assert exc.value.member == member
    assert isinstance(exc.value, ValueError)
    assert repr(member) in str(exc.value)
    assert outside.read_text() == "original"
    _assert_nothing_left(tmp_path, dest)


def test_too_large_declared_size(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "big.tar.gz", _file("a.bin", b"\0" * 600), _file("b.bin", b"\0" * 600))
    dest = tmp_path / "model"
    with pytest.raises(UnsafeArchiveError, match=r"declared size 600.*cap") as exc:
        safe_extract(archive, dest, max_bytes=1000)
    assert exc.value.member == "b.bin"
    _assert_nothing_left(tmp_path, dest)


def test_lying_header_is_rejected_before_any_data_is_read(tmp_path: Path) -> None:
    """A header claiming 10 GiB but carrying 1 byte: refused by the declared size, not read."""
    archive = tmp_path / "liar.tar"
    info = tarfile.TarInfo("weights.bin")
    info.size = 10 * 1024**3
    archive.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + b"x" + b"\0" * 1023)
    with pytest.raises(UnsafeArchiveError, match="declared size") as exc:
        safe_extract(archive, tmp_path / "model", max_bytes=1024**2)
    assert exc.value.member == "weights.bin"


def test_gzip_bomb_beyond_the_cap(tmp_path: Path) -> None:
    """64 MiB of zeros compressing to ~64 KiB: refused at the cap, nothing written."""
    archive = _archive(tmp_path / "bomb.tar.gz", _file("bomb.bin", b"\0" * (64 * 1024**2)))
    assert archive.stat().st_size < 1024**2
    dest = tmp_path / "model"
    with pytest.raises(UnsafeArchiveError, match="cap") as exc:
        safe_extract(archive, dest, max_bytes=4 * 1024**2)
    assert exc.value.member == "bomb.bin"
    _assert_nothing_left(tmp_path, dest)


def test_bomb_hidden_in_a_pax_header_is_cut_off_by_the_stream_cap(tmp_path: Path) -> None:
    """A 64 MiB PAX extended header is not file data, yet tarfile would buffer it whole."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 64 * 1024**2
    raw = header.tobuf(format=tarfile.USTAR_FORMAT) + b"\0" * header.size
    archive = tmp_path / "paxbomb.tar.gz"
    archive.write_bytes(gzip.compress(raw + b"\0" * 1024, compresslevel=1))
    dest = tmp_path / "model"
    with pytest.raises(UnsafeArchiveError, match="decompression bomb") as exc:
        safe_extract(archive, dest, max_bytes=1024**2, max_members=10)
    assert exc.value.member == "<archive>"
    _assert_nothing_left(tmp_path, dest)


def test_hardlinks_count_toward_the_cap(tmp_path: Path) -> None:
    """Hardlinks declare size 0 but are copies on disk: the bytes-written counter catches them."""
    adders = [_file("w.bin", b"\1" * 400)] + [
        _special(f"copy{i}", tarfile.LNKTYPE, "w.bin") for i in range(3)
    ]
    archive = _archive(tmp_path / "links.tar.gz", *adders)
    with pytest.raises(UnsafeArchiveError, match="cap") as exc:
        safe_extract(archive, tmp_path / "model", max_bytes=1000)
    assert exc.value.member == "copy1"
    ok = safe_extract(archive, tmp_path / "model2", max_bytes=2000)
    assert (ok / "copy2").read_bytes() == b"\1" * 400


def test_too_many_members(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "many.tar.gz", *[_file(f"f{i:03d}") for i in range(11)])
    dest = tmp_path / "model"
    with pytest.raises(UnsafeArchiveError, match="more than 10 members") as exc:
        safe_extract(archive, dest, max_members=10)
    assert exc.value.member == "f010"
    _assert_nothing_left(tmp_path, dest)
    assert len(list(safe_extract(archive, dest, max_members=11).iterdir())) == 11


def test_links_that_stay_inside_are_extracted(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "ok.tar.gz",
        _special("./", tarfile.DIRTYPE),
        _file("./weights/model.joblib", b"w"),
        _special("current", tarfile.SYMTYPE, "weights"),
        _special("code/link.joblib", tarfile.SYMTYPE, "../weights/model.joblib"),
        _special("hard.joblib", tarfile.LNKTYPE, "weights/model.joblib"),
        compress=False,
    )
    dest = safe_extract(archive, tmp_path / "model")
    assert (dest / "current" / "model.joblib").read_bytes() == b"w"
    assert (dest / "code" / "link.joblib").read_bytes() == b"w"
    assert (dest / "hard.joblib").read_bytes() == b"w"
    assert os.readlink(dest / "current") == "weights"


def test_write_through_an_inside_symlink_to_an_existing_file_is_refused(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "alias.tar.gz",
        _file("weights/model.joblib", b"good"),
        _special("alias", tarfile.SYMTYPE, "weights"),
        _file("alias/model.joblib", b"evil"),
    )
    with pytest.raises(UnsafeArchiveError, match="already extracted") as exc:
        safe_extract(archive, tmp_path / "model")
    assert exc.value.member == "alias/model.joblib"


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("tool")
        info.size = 1
        info.mode = 0o4777
        tar.addfile(info, io.BytesIO(b"x"))

    dest = safe_extract(_archive(tmp_path / "suid.tar.gz", add), tmp_path / "model")
    assert (dest / "tool").stat().st_mode & 0o7777 == 0o755


def test_unreadable_archives_raise_archive_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(ArchiveError, match="not a readable tar archive"):
        safe_extract(junk, tmp_path / "a")
    good = _archive(tmp_path / "good.tar.gz", _file("a.bin", os.urandom(200_000)))
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(good.read_bytes()[:50_000])
    with pytest.raises(ArchiveError) as exc:
        safe_extract(truncated, tmp_path / "b")
    assert not isinstance(exc.value, UnsafeArchiveError)
    _assert_nothing_left(tmp_path, tmp_path / "b")
    with pytest.raises(FileNotFoundError):
        safe_extract(tmp_path / "missing.tar.gz", tmp_path / "c")


def test_existing_destination_needs_replace(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "m.tar.gz", _file("new.bin", b"new"))
    dest = tmp_path / "model"
    dest.mkdir()
    assert safe_extract(archive, dest) == dest  # empty dir is fine
    with pytest.raises(FileExistsError, match="replace=True"):
        safe_extract(archive, dest)
    (dest / "stale.bin").write_bytes(b"old")
    safe_extract(archive, dest, replace=True)
    assert sorted(p.name for p in dest.iterdir()) == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.")] == []


def test_failed_replace_keeps_the_old_model(tmp_path: Path) -> None:
    dest = safe_extract(_archive(tmp_path / "m.tar.gz", _file("v1.bin", b"1")), tmp_path / "model")
    evil = _archive(tmp_path / "e.tar.gz", _file("v2.bin", b"2"), _file("../x", b"x"))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(evil, dest, replace=True)
    assert sorted(p.name for p in dest.iterdir()) == ["v1.bin"]


def test_file_used_as_a_directory_is_rejected(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "a.tar.gz", _file("model", b"x"), _file("model/weights.bin", b"y"))
    with pytest.raises(UnsafeArchiveError, match="parent") as exc:
        safe_extract(archive, tmp_path / "out")
    assert exc.value.member == "model/weights.bin"
    _assert_nothing_left(tmp_path, tmp_path / "out")
