"""Public serving: no absolute server path shown, data folders only from the offered list."""

import os
from pathlib import Path

import pytest

from digits_core.errors import ConfigError
from digits_core.serve.serving import (
    allowed_data_folders,
    check_data_folder,
    display_path,
    served_publicly,
)


@pytest.fixture
def public(monkeypatch, tmp_path):
    offered = tmp_path / "class-data"
    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    monkeypatch.setenv("DIGITLAB_DATA_DIRS", os.pathsep.join([str(offered), ""]))
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path / "runs"))
    return offered


def test_private_by_default(monkeypatch):
    monkeypatch.delenv("DIGITLAB_PUBLIC", raising=False)
    assert not served_publicly()
    assert display_path(Path.home() / "x" / "runs") == "~/x/runs"
    assert check_data_folder(" ~/mnist ") == Path.home() / "mnist"


def test_public_paths_are_relative_or_bare(public, tmp_path):
    assert served_publicly()
    assert display_path(tmp_path / "runs" / "r1" / "weights.pt") == "runs/r1/weights.pt"
    assert display_path(public / "mnist") == "class-data/mnist"
    assert display_path("/etc/secret/thing.png") == "thing.png"
    assert all(not display_path(f).startswith("/") for f in allowed_data_folders())


def test_public_data_folders_only_from_the_list_and_no_oracle(public, tmp_path):
    public.mkdir()
    assert public in allowed_data_folders() and len(allowed_data_folders()) == 2
    assert check_data_folder(str(public)) == public
    assert check_data_folder("class-data") == public
    messages = set()
    for text in ["/etc", "/no/such/folder", str(tmp_path), str(public / ".." / ".."), "../..", "\x00"]:
        with pytest.raises(ConfigError) as info:
            check_data_folder(text)
        messages.add(str(info.value))
    messages.discard("type the path of a folder")
    assert len(messages) == 1  # the same answer whether the path exists or not
    assert str(tmp_path) not in messages.pop()
