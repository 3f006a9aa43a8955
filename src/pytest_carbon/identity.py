"""The CI job a session belongs to: from options, else from the CI's environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from pytest_carbon.report.model import JobIdentity

#: CI name → (detecting variable, {identity field: variable}).
CI_VARIABLES: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "github-actions": (
        "GITHUB_ACTIONS",
        {
            "commit": "GITHUB_SHA",
            "run_id": "GITHUB_RUN_ID",
            "branch": "GITHUB_REF_NAME",
            "event": "GITHUB_EVENT_NAME",
            "project": "GITHUB_REPOSITORY",
            "job": "GITHUB_JOB",
        },
    ),
    "gitlab": (
        "GITLAB_CI",
        {
            "commit": "CI_COMMIT_SHA",
            "run_id": "CI_PIPELINE_ID",
            "branch": "CI_COMMIT_REF_NAME",
            "event": "CI_PIPELINE_SOURCE",
            "project": "CI_PROJECT_PATH",
            "job": "CI_JOB_NAME",
        },
    ),
    "travis": (
        "TRAVIS",
        {
            "commit": "TRAVIS_COMMIT",
            "run_id": "TRAVIS_BUILD_ID",
            "branch": "TRAVIS_BRANCH",
            "event": "TRAVIS_EVENT_TYPE",
            "project": "TRAVIS_REPO_SLUG",
            "job": "TRAVIS_JOB_NAME",
        },
    ),
    "circleci": (
        "CIRCLECI",
        {
            "commit": "CIRCLE_SHA1",
            "run_id": "CIRCLE_WORKFLOW_ID",
            "branch": "CIRCLE_BRANCH",
            "project": "CIRCLE_PROJECT_REPONAME",
            "job": "CIRCLE_JOB",
        },
    ),
    "azure-pipelines": (
        "TF_BUILD",
        {
            "commit": "BUILD_SOURCEVERSION",
            "run_id": "BUILD_BUILDID",
            "branch": "BUILD_SOURCEBRANCHNAME",
            "event": "BUILD_REASON",
            "project": "BUILD_REPOSITORY_NAME",
            "job": "SYSTEM_JOBDISPLAYNAME",
        },
    ),
    "jenkins": (
        "JENKINS_URL",
        {
            "commit": "GIT_COMMIT",
            "run_id": "BUILD_TAG",
            "branch": "GIT_BRANCH",
            "job": "JOB_NAME",
        },
    ),
}


def detect_identity(
    job: str | None,
    matrix: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
) -> JobIdentity:
    """The job identity: explicit ``job``/``matrix`` win; the rest comes from the CI environment."""
    env = os.environ if environ is None else environ
    identity = JobIdentity(job=job, matrix=dict(matrix))
    for ci, (marker, fields) in CI_VARIABLES.items():
        if not env.get(marker):
            continue
        identity.ci = ci
        for name, variable in fields.items():
            value = env.get(variable)
            if value and getattr(identity, name) is None:
                setattr(identity, name, value)
        if ci == "github-actions" and env.get("GITHUB_RUN_ATTEMPT", "1") != "1":
            identity.run_id = f"{identity.run_id}.{env['GITHUB_RUN_ATTEMPT']}"
        break
    if identity.job is None and identity.matrix:
        identity.job = "-".join(identity.matrix[key] for key in sorted(identity.matrix))
    return identity
