"""The drawings store: what a mark keeps, who may delete what, the per-person cap, and
twelve students saving at once (threads and processes) losing nothing."""

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from digits_core.store import drawings as dr


def _pad(seed: int = 0) -> np.ndarray:
    rgba = np.zeros((280, 280, 4), np.uint8)
    rng = np.random.default_rng(seed)
    r, c = rng.integers(60, 200, 2)
    rgba[r - 40:r + 40, c - 8:c + 8] = 255
    return rgba


def _save(root, owner="alice", label=7, reading=1, person=""):
    x = np.full((28, 28), 3.0, np.float32)
    return dr.save_drawing(root, _pad(label), x, label=label, reading=reading, model="S4-2",
                           model_key="S4-2", owner=owner, person=person)


def test_a_marked_drawing_keeps_its_pad_input_label_model_reading_who_and_when(tmp_path):
    d = _save(tmp_path, person="Alice")
    [back] = dr.list_drawings(tmp_path)
    assert (back.label, back.reading, back.model, back.owner, back.person) == (7, 1, "S4-2", "alice", "Alice")
    assert back.misread and back.when > 0
    import io

    from PIL import Image

    pad = np.asarray(Image.open(io.BytesIO(dr.pad_png(tmp_path, d.id))))
    assert pad.shape == (280, 280, 4) and (pad == _pad(7)).all()
    assert (dr.model_input(tmp_path, d.id) == 3.0).all()


def test_the_store_lives_in_the_runs_folder_and_survives_a_new_reader(tmp_path):
    _save(tmp_path)
    assert (tmp_path / ".drawings").is_dir()
    assert len(dr.list_drawings(str(tmp_path))) == 1  # another process reads the same folder


def test_a_label_outside_0_to_9_is_refused(tmp_path):
    with pytest.raises(dr.DrawingStoreError, match="0..9"):
        _save(tmp_path, label=11)
    assert dr.list_drawings(tmp_path) == []


def test_the_per_person_cap_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DRAWINGS_PER_PERSON", "3")
    for _ in range(3):
        _save(tmp_path)
    with pytest.raises(dr.DrawingStoreError, match="3 is the most one person may keep: delete some"):
        _save(tmp_path)
    _save(tmp_path, owner="bob")  # another person's count is their own
    assert len(dr.list_drawings(tmp_path)) == 4


def test_check_cap_alone():
    dr.check_cap(2, 1, cap=3)
    with pytest.raises(dr.DrawingStoreError, match="these 2"):
        dr.check_cap(2, 2, cap=3)


def test_only_the_owner_deletes_one_and_delete_mine_leaves_others(tmp_path):
    a = _save(tmp_path, owner="alice")
    _save(tmp_path, owner="alice")
    b = _save(tmp_path, owner="bob", person="Bob")
    with pytest.raises(dr.DrawingStoreError, match="only Bob"):
        dr.delete_drawing(tmp_path, b.id, by="alice")
    dr.delete_drawing(tmp_path, a.id, by="alice")
    assert [d.owner for d in dr.list_drawings(tmp_path)] == ["alice", "bob"]
    assert dr.delete_mine(tmp_path, "alice") == 1
    assert [d.id for d in dr.list_drawings(tmp_path)] == [b.id]


def test_a_teacher_takes_a_drawing_out_of_the_shared_set_its_owner_still_sees_it(tmp_path):
    a = _save(tmp_path, owner="@ada")
    _save(tmp_path, owner="@ben")
    dr.remove_from_shared(tmp_path, a.id)
    every = dr.list_drawings(tmp_path)
    assert [d.owner for d in dr.visible(every, "@ben", class_server=True)] == ["@ben"]
    assert sorted(d.owner for d in dr.visible(every, "@ada", class_server=True)) == ["@ada", "@ben"]
    assert len(dr.visible(every, "anyone", class_server=False)) == 2


def test_a_damaged_or_half_written_drawing_is_skipped_not_fatal(tmp_path):
    good = _save(tmp_path)
    bad = _save(tmp_path)
    (tmp_path / ".drawings" / bad.id / "meta.json").write_text('{"label": 11}')
    (tmp_path / ".drawings" / ".tmp-d0000000000000000001-abcdef01").mkdir()
    assert [d.id for d in dr.list_drawings(tmp_path)] == [good.id]
    with pytest.raises(dr.DrawingStoreError, match="not a drawing's name"):
        dr.pad_png(tmp_path, "../../etc/passwd")


def test_an_oversized_model_input_is_refused_unread(tmp_path):
    d = _save(tmp_path)
    np.save(tmp_path / ".drawings" / d.id / "input.npy", np.zeros((200, 200), np.float32))
    with pytest.raises(dr.DrawingStoreError, match="cannot be read"):
        dr.model_input(tmp_path, d.id)


def _save_in_process(args):
    root, k = args
    _save(root, owner=f"student{k}", label=k % 10)
    return os.getpid()


def test_twelve_students_saving_at_once_lose_nothing_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DRAWINGS_PER_PERSON", "5")
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda k: [_save(tmp_path, owner=f"s{k}", label=k % 10) for _ in range(5)], range(12)))
    got = dr.list_drawings(tmp_path)
    assert len(got) == 60 and len({d.id for d in got}) == 60
    assert all(sum(d.owner == f"s{k}" for d in got) == 5 for k in range(12))
    assert all(dr.model_input(tmp_path, d.id).shape == (28, 28) for d in got)


def test_twelve_students_saving_at_once_lose_nothing_processes(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        pool.map(_save_in_process, [(str(tmp_path), k) for k in range(12)] * 2)
    got = dr.list_drawings(tmp_path)
    assert len(got) == 24
    assert sorted(d.owner for d in got) == sorted([f"student{k}" for k in range(12)] * 2)


def test_the_cap_holds_exactly_when_one_person_saves_from_many_tabs_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DRAWINGS_PER_PERSON", "7")

    def one(_):
        try:
            _save(tmp_path, owner="alice")
            return True
        except dr.DrawingStoreError:
            return False

    with ThreadPoolExecutor(12) as pool:
        saved = list(pool.map(one, range(12)))
    assert sum(saved) == 7 and len(dr.list_drawings(tmp_path)) == 7
