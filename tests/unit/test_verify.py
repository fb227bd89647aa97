from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.launch.probes import HttpExpect, HttpRequest
from bench.launch.verify import Vectors, VectorsError, case_parts, differences, load_vectors

REPO = Path(__file__).resolve().parents[2]


def test_equal_bodies_have_no_differences() -> None:
    body = {"a": [1, {"b": "x"}], "c": True}
    assert differences(body, json.loads(json.dumps(body))) == []


def test_differences_name_the_path() -> None:
    found = differences({"parts": {"pricing": {"value": 1}}}, {"parts": {"pricing": {"value": 2}}})
    assert found == ["body.parts.pricing.value: expected 1, got 2"]


def test_missing_and_unexpected_keys() -> None:
    assert differences({"a": 1}, {"b": 1}) == ["body.a: missing", "body.b: unexpected"]


def test_list_length_and_types_matter() -> None:
    assert differences([1, 2], [1]) == ["body: expected 2 items, got 1"]
    assert differences(1, 1.0) == ["body: expected 1, got 1.0"]
    assert differences(True, 1) == ["body: expected true, got 1"]


def test_any_string_matches_only_non_empty_strings() -> None:
    expected = {"message": "<any-string>"}
    assert differences(expected, {"message": "bad item id"}) == []
    assert differences(expected, {"message": ""}) == ["body.message: expected a non-empty string"]
    assert differences(expected, {"message": 3}) == ["body.message: expected a non-empty string"]


def test_the_fanout_vectors_load() -> None:
    vectors = load_vectors(REPO / "systems" / "fanout" / "vectors.json")
    assert vectors.params["fanout"] == 6
    assert any(case.expect["status"] == 400 for case in vectors.cases)


def test_a_malformed_vectors_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps({"cases": [{"name": "x", "request": {"path": "/"}}]}))
    with pytest.raises(VectorsError) as err:
        load_vectors(path)
    assert str(err.value) == f"{path}: cases.0.expect: Field required"


def test_a_case_the_probe_cannot_send_names_the_case_and_field() -> None:
    vectors = Vectors.model_validate(
        {"cases": [{"name": "x", "request": {"path": "no-slash"}, "expect": {"status": 200}}]}
    )
    with pytest.raises(VectorsError) as err:
        case_parts(vectors, HttpRequest, HttpExpect)
    assert str(err.value).startswith("cases[0] (x): path: String should match pattern")
