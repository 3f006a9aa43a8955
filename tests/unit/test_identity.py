from __future__ import annotations

from pytest_carbon.identity import detect_identity


def test_github_actions_environment() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": "abc",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_REF_NAME": "main",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REPOSITORY": "org/repo",
        "GITHUB_JOB": "tests",
    }
    identity = detect_identity(None, {}, env)
    assert identity.ci == "github-actions"
    assert (identity.commit, identity.run_id, identity.branch) == ("abc", "42.2", "main")
    assert (identity.event, identity.project, identity.job) == ("pull_request", "org/repo", "tests")


def test_explicit_values_win_and_matrix_names_the_job() -> None:
    env = {"GITLAB_CI": "true", "CI_JOB_NAME": "from-ci", "CI_PIPELINE_ID": "9"}
    assert detect_identity("mine", {}, env).job == "mine"
    identity = detect_identity(None, {"python": "3.12", "db": "pg"}, {})
    assert identity.job == "pg-3.12"
    assert identity.ci is None


def test_gitlab_run_id() -> None:
    identity = detect_identity(None, {"os": "linux"}, {"GITLAB_CI": "true", "CI_PIPELINE_ID": "9"})
    assert identity.run_id == "9"
    assert identity.job == "linux"
