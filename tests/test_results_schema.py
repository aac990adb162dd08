"""The typed results schema: committed JSON Schemas match the models, versions are checked."""

from __future__ import annotations

import json

import pytest

from evalharness.errors import UserInputError
from evalharness.results.runs import load_run
from evalharness.results.schema import SCHEMA_DIR, SCHEMA_VERSION, Summary, json_schemas, parse_summary, render_schema
from evalharness.results.summary import build_summary
from factories import outcomes_records, run_metadata, write_run


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_committed_schema_files_equal_the_models(name):
    committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert committed == render_schema(json_schemas()[name]), (
        f"{name} is stale: regenerate with 'python -m evalharness.results.schema'"
    )


def test_schema_files_document_the_version_and_the_fields():
    summary = json.loads((SCHEMA_DIR / "summary.schema.json").read_text())
    assert summary["$id"].endswith(f"summary.v{SCHEMA_VERSION}.schema.json")
    assert "schema_version" in summary["required"]
    counts = summary["$defs"]["SuiteSummary"]["properties"]
    assert "Wilson" in counts["ci_low"]["description"]
    assets = summary["$defs"]["AssetsInfo"]["properties"]
    assert {"provenance", "differs", "source", "note", "tree_sha256"} <= set(assets)
    episode = json.loads((SCHEMA_DIR / "episode.schema.json").read_text())
    assert f"schema_version {SCHEMA_VERSION}" in episode["description"]
    assert {"key", "suite", "init_state", "seed", "success", "error_kind"} <= set(episode["required"]) | set(episode["properties"])


def test_build_summary_output_validates_and_round_trips():
    records = outcomes_records("libero_goal", 0, "SSFE") + outcomes_records("libero_10", 2, "SF")
    summary = build_summary(records, run_metadata(), expected_episodes=8)
    data = summary.to_document()
    model = Summary.model_validate(data)
    assert isinstance(summary, Summary) and summary.model_dump() == model.model_dump()
    assert model.schema_version == SCHEMA_VERSION
    assert model.metadata.assets is not None and model.metadata.assets.provenance == "original"
    assert not model.complete and model.totals.missing_episodes == 2
    assert model.model_dump(exclude_unset=True) == data


def test_build_summary_rejects_metadata_of_the_wrong_type():
    with pytest.raises(ValueError, match="camera_size"):
        build_summary(outcomes_records("libero_goal", 0, "S"), run_metadata(camera_size="big"))


def test_assets_provenance_fields_are_optional_and_read():
    legacy = {"tree_sha256": "a" * 64, "note": "30 visual stand-ins"}
    modern = {"tree_sha256": "b" * 64, "provenance": "modified: 30 files differ", "differs": ["x.obj"], "source": "pypi"}
    for assets, modified in ((legacy, True), (modern, True), ({"provenance": "original"}, False), ({}, False)):
        s = build_summary(outcomes_records("libero_goal", 0, "S"), run_metadata(assets=assets))
        assert s.metadata.assets.modified is modified, assets
    assert "modified: 30 files differ" in build_summary([], run_metadata(assets=modern)).metadata.assets.describe()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schema_version": 0}, "has schema_version 0; this evalharness reads schema_version 2"),
        ({"schema_version": None}, "has no schema_version; this evalharness reads schema_version 2"),
        ({"schema_version": "1"}, "has schema_version '1'"),
    ],
)
def test_an_old_or_foreign_file_gets_one_line_with_both_versions(tmp_path, change, expected):
    run = write_run(tmp_path / "run", outcomes_records("libero_goal", 0, "SF"))
    data = json.loads((run / "summary.json").read_text())
    data.update(change)
    if change.get("schema_version", 0) is None:
        del data["schema_version"]
    (run / "summary.json").write_text(json.dumps(data))
    with pytest.raises(UserInputError) as info:
        load_run(run)
    message = str(info.value)
    assert expected in message and "summary.json" in message and "\n" not in message


def test_a_broken_summary_names_the_field(tmp_path):
    data = build_summary(outcomes_records("libero_goal", 0, "SF"), run_metadata()).to_document()
    data["totals"]["successes"] = -1
    with pytest.raises(UserInputError, match=r"x.json is not a valid summary: totals.successes=-1 is not valid: .*greater than or equal to 0"):
        parse_summary(data, "x.json")
    with pytest.raises(UserInputError, match="is not a results summary"):
        parse_summary([1, 2], "y.json")
