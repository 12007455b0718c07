"""Files every stage writes (``edgellm.io``): atomic, and hashed the one way."""

from __future__ import annotations

import hashlib
import json

import pytest

from edgellm.io import sha256_file, write_json


def test_atomic_json_never_half_written(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": 1, "nan": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1, "nan": None}

    class Boom:
        pass

    with pytest.raises(TypeError):
        write_json(path, {"a": Boom()})
    assert json.loads(path.read_text()) == {"a": 1, "nan": None}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_sha256_file_reads_in_chunks(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk=1000) == sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_written_files_get_the_mode_open_gives(tmp_path):
    """An atomic write is a rename of a temporary file; the result must not keep mkstemp's private 0600."""
    import os

    from edgellm.io import write_json

    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
