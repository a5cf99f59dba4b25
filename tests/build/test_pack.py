"""pack_model writes the SageMaker layout deterministically; upload_model / model_data_url name S3 objects."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from catkit.build import model_data_url, pack_model, safe_extract, upload_model


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))


def _model_tree(root: Path) -> tuple[Path, Path]:
    model = root / "model"
    (model / "sub").mkdir(parents=True)
    (model / "model.joblib").write_bytes(b"\x00weights" * 100)
    (model / "metadata.json").write_text('{"accuracy": 0.97}')
    (model / "sub" / "extra.bin").write_bytes(os.urandom(2048))
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    code = root / "code"
    code.mkdir()
    (code / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    (code / "features.py").write_text("X = 1\n")
    return model, code


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_model_files_at_root_code_under_code(tmp_path: Path) -> None:
    model, code = _model_tree(tmp_path)
    out = pack_model(model, tmp_path / "out" / "model.tar.gz", code_dir=code, requirements=["numpy", "  "])
    assert out == tmp_path / "out" / "model.tar.gz"
    with tarfile.open(out) as tar:
        names = tar.getnames()
        members = tar.getmembers()
        reqs = tar.extractfile("code/requirements.txt").read()  # type: ignore[union-attr]
    assert names == sorted(names)
    assert set(names) == {
        "code", "code/features.py", "code/inference.py", "code/requirements.txt",
        "metadata.json", "model.joblib", "sub", "sub/extra.bin",
    }  # fmt: skip
    assert reqs == b"numpy\n"
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        assert m.mtime == members[0].mtime
        assert m.mode == (0o755 if m.isdir() else 0o644)


def test_same_inputs_give_same_bytes_even_after_touching_files(tmp_path: Path) -> None:
    model, code = _model_tree(tmp_path)
    a = pack_model(model, tmp_path / "a.tar.gz", code_dir=code)
    for p in model.rglob("*"):
        os.utime(p, (1_000_000_000, 1_000_000_000))
    b = pack_model(model, tmp_path / "b.tar.gz", code_dir=code)
    assert a.read_bytes() == b.read_bytes()
    with open(a, "rb") as fh:  # gzip header: no file name, mtime 0
        header = fh.read(10)
    assert header[3] & 0x08 == 0 and header[4:8] == b"\x00\x00\x00\x00"
    (model / "metadata.json").write_text('{"accuracy": 0.98}')
    assert pack_model(model, tmp_path / "c.tar.gz", code_dir=code).read_bytes() != a.read_bytes()


def test_round_trip_through_safe_extract(tmp_path: Path) -> None:
    model, code = _model_tree(tmp_path)
    (code / "run.sh").write_text("#!/bin/sh\n")
    (code / "run.sh").chmod(0o755)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("scikit-learn>=1.5\n")
    archive = pack_model(model, tmp_path / "model.tar.gz", code_dir=code, requirements=reqs)
    dest = safe_extract(archive, tmp_path / "unpacked")
    expected = {k: v for k, v in _files(model).items() if "__pycache__" not in k}
    expected.update({f"code/{k}": v for k, v in _files(code).items()})
    expected["code/requirements.txt"] = b"scikit-learn>=1.5\n"
    assert _files(dest) == expected
    assert os.access(dest / "code" / "run.sh", os.X_OK)
    assert not os.access(dest / "model.joblib", os.X_OK)


def test_code_folder_already_inside_model_dir_is_kept(tmp_path: Path) -> None:
    model, code = _model_tree(tmp_path)
    (model / "code").mkdir()
    (model / "code" / "inference.py").write_text("pass\n")
    with tarfile.open(pack_model(model, tmp_path / "m.tar.gz")) as tar:
        assert "code/inference.py" in tar.getnames()
    with pytest.raises(ValueError, match=r"code/inference\.py.*twice"):
        pack_model(model, tmp_path / "m2.tar.gz", code_dir=code)
    assert not (tmp_path / "m2.tar.gz").exists()


def test_archive_written_inside_model_dir_does_not_include_itself(tmp_path: Path) -> None:
    model, _ = _model_tree(tmp_path)
    pack_model(model, model / "model.tar.gz")
    second = pack_model(model, model / "model.tar.gz")
    with tarfile.open(second) as tar:
        assert "model.tar.gz" not in tar.getnames()


def test_bad_arguments_name_what_is_wrong(tmp_path: Path) -> None:
    model, code = _model_tree(tmp_path)
    with pytest.raises(ValueError, match="is a directory"):
        pack_model(model, code)  # the contracts' old (model_dir, code_dir, out_path) order
    with pytest.raises(FileNotFoundError, match="model_dir"):
        pack_model(tmp_path / "missing", tmp_path / "x.tar.gz")
    with pytest.raises(FileNotFoundError, match="requirements file"):
        pack_model(model, tmp_path / "x.tar.gz", requirements=tmp_path / "nope.txt")
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".x.tar.gz*"))


def test_symlink_leaving_the_model_dir_is_refused(tmp_path: Path) -> None:
    model, _ = _model_tree(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("aws_secret_access_key=...")
    (model / "creds").symlink_to(secret)
    with pytest.raises(ValueError, match="outside"):
        pack_model(model, tmp_path / "m.tar.gz")


def test_symlink_inside_the_model_dir_is_packed_as_a_file(tmp_path: Path) -> None:
    model, _ = _model_tree(tmp_path)
    (model / "alias.joblib").symlink_to("model.joblib")
    with tarfile.open(pack_model(model, tmp_path / "m.tar.gz")) as tar:
        member = tar.getmember("alias.joblib")
        assert member.isreg()
        assert tar.extractfile(member).read() == (model / "model.joblib").read_bytes()  # type: ignore[union-attr]


def test_archive_is_gzip(tmp_path: Path) -> None:
    model, _ = _model_tree(tmp_path)
    out = pack_model(model, tmp_path / "m.tar.gz")
    with gzip.open(out) as gz:
        assert len(gz.read()) % 512 == 0


def test_model_data_url_and_validation() -> None:
    assert model_data_url("bucket", "models/cathat/model.tar.gz") == "s3://bucket/models/cathat/model.tar.gz"
    assert model_data_url("bucket", "mme/") == "s3://bucket/mme/"
    for bucket, key in [("", "k"), ("s3://b", "k"), ("b/c", "k"), ("b", ""), ("b", "/k")]:
        with pytest.raises(ValueError):
            model_data_url(bucket, key)


def test_upload_model_puts_the_archive_and_returns_its_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    model, code = _model_tree(tmp_path)
    archive = pack_model(model, tmp_path / "model.tar.gz", code_dir=code)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        url = upload_model(archive, s3, "models", "cathat/v0/model.tar.gz")
        assert url == "s3://models/cathat/v0/model.tar.gz"
        body = s3.get_object(Bucket="models", Key="cathat/v0/model.tar.gz")["Body"].read()
        assert body == archive.read_bytes()
        with pytest.raises(ValueError, match="ends with '/'"):
            upload_model(archive, s3, "models", "cathat/")
        with pytest.raises(FileNotFoundError, match="pack_model"):
            upload_model(tmp_path / "none.tar.gz", s3, "models", "k")
