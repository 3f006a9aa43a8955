from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_carbon.report.model import SessionReport, json_schema

jsonschema = pytest.importorskip("jsonschema")


def test_published_schema_is_up_to_date(repo_root: Path) -> None:
    published = json.loads((repo_root / "docs" / "report.schema.json").read_text())
    assert published == json.loads(json.dumps(json_schema())), (
        "docs/report.schema.json is stale: regenerate it with "
        "python -c 'import json; from pytest_carbon.report.model import json_schema; "
        "print(json.dumps(json_schema(), indent=2, sort_keys=True))' > docs/report.schema.json"
    )


def test_reports_validate_against_the_schema(sample_report: SessionReport) -> None:
    report = sample_report
    jsonschema.validate(json.loads(report.to_json()), json_schema())
    broken = report.to_dict()
    broken["tests"][0]["phases"]["call"]["wall_s"] = "slow"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json_schema())
