"""The offline planner's cache (strategist/cache.py): what it derives from its
data files is read back only when it is exactly what would be derived again,
from a directory nobody else can write; anything else is ignored."""

from __future__ import annotations

import json
import os

import pytest

from cli_ai.strategist import cache
from cli_ai.strategist.retrieval import Index, cached_scores, default_indexes, score_documents

GOALS = ["our proxy logs too many open files", "inotify watches run out", "mqtt clients get disconnected",
         "postgres checkpoints are occurring too frequently", "ephemral ports run out"]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("CLI_AI_CACHE_DIR", str(d))
    return d


def _docs():
    return default_indexes()[0].docs


def _ranking(index, goal):
    return [(h.doc.id, h.score, h.matched) for h in index.rank(goal)]


def test_a_cached_index_ranks_exactly_as_one_built_from_the_data(fresh_cache):
    docs = _docs()
    built = Index(docs, scored=score_documents(docs, 0.75))
    first = cached_scores("entries", docs, 0.75)  # builds and stores
    assert list(fresh_cache.glob("retrieval-entries-*.json"))
    again = cached_scores("entries", docs, 0.75)  # reads back
    assert again == first
    cached = Index(docs, scored=again)
    for goal in GOALS:
        assert _ranking(cached, goal) == _ranking(built, goal)


def test_a_cache_file_of_the_wrong_shape_is_ignored_and_replaced(fresh_cache):
    docs = _docs()
    cached_scores("entries", docs, 0.75)
    (path,) = fresh_cache.glob("retrieval-entries-*.json")
    data = json.loads(path.read_text())
    data["terms"]["file"] = [[10**6, 99.0]]  # a document that does not exist
    path.write_text(json.dumps(data))
    assert cached_scores("entries", docs, 0.75) == score_documents(docs, 0.75)
    assert json.loads(path.read_text())["terms"]["file"] != [[10**6, 99.0]]


def test_changed_documents_never_meet_the_old_cache(fresh_cache):
    docs = _docs()
    cached_scores("entries", docs, 0.75)
    fewer = docs[:-1]
    assert cached_scores("entries", fewer, 0.75) == score_documents(fewer, 0.75)
    assert len(list(fresh_cache.glob("retrieval-entries-*.json"))) == 1  # the old one was removed


def test_a_cache_directory_others_can_write_is_not_used(fresh_cache):
    fresh_cache.mkdir(mode=0o700)
    os.chmod(fresh_cache, 0o777)
    cache.store_json("x.json", {"a": 1})
    assert not (fresh_cache / "x.json").exists()
    os.chmod(fresh_cache, 0o700)
    (fresh_cache / "x.json").write_text('{"a": 2}')
    os.chmod(fresh_cache / "x.json", 0o600)
    assert cache.load_json("x.json") == {"a": 2}
    os.chmod(fresh_cache, 0o777)
    assert cache.load_json("x.json") is None


def test_a_symlinked_cache_file_is_not_followed(fresh_cache, tmp_path):
    fresh_cache.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.json"
    target.write_text('{"a": 3}')
    (fresh_cache / "x.json").symlink_to(target)
    assert cache.load_json("x.json") is None


def test_plan_works_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    monkeypatch.setenv("CLI_AI_CACHE_DIR", str(blocked / "cache"))
    docs = _docs()
    assert cached_scores("entries", docs, 0.75) == score_documents(docs, 0.75)


@pytest.mark.parametrize("cell", [[1.5, 2.0], [True, 2.0], [0, "2"], [0, float("nan")], [0], "x"])
def test_a_cached_cell_that_is_not_a_document_index_and_a_number_is_refused(cell):
    from cli_ai.strategist.retrieval import Scored

    assert Scored.from_json({"tokens": [["a"], ["b"]], "terms": {"a": [cell]}}, 2) is None
    assert Scored.from_json({"tokens": [["a"], ["b"]], "terms": {"a": [[1, 2.5]]}}, 2).terms == {"a": {1: 2.5}}


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(fresh_cache):
    cache.store_json("x.json", {"a": object()})  # not JSON: the write fails half way
    assert fresh_cache.is_dir() and list(fresh_cache.iterdir()) == []
