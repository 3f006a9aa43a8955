"""Every ``--carbon*`` option, declared once, with its ini twin, environment variable and validator.

Precedence: command line, then ini file, then environment variable (``PYTEST_CARBON_<NAME>``).
A bad value raises :class:`pytest.UsageError` with a message that names the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

GROUP: Final = "carbon"
#: Default of ``--carbon-plan-max-age-days``.
DEFAULT_PLAN_MAX_AGE_DAYS: Final = 14.0


@dataclass(frozen=True)
class Option:
    """One option: its flag, ini key, help text and how it is parsed."""

    name: str
    help: str
    metavar: str | None = None
    flag: bool = False
    repeat: bool = False


OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        "carbon", "measure energy and carbon emissions of the session and every test.", flag=True
    ),
    Option("carbon_top", "show the N tests with the highest emissions (default 10).", "N"),
    Option("carbon_json", "write the carbon report as JSON to PATH.", "PATH"),
    Option(
        "carbon_job", "name of this CI job in reports (default: from the CI environment).", "NAME"
    ),
    Option(
        "carbon_matrix",
        "matrix value of this CI job, e.g. python=3.12 (repeatable).",
        "KEY=VALUE",
        repeat=True,
    ),
    Option(
        "carbon_country",
        "ISO 3166 alpha-3 code of the grid powering the machine (default: world average).",
        "ISO3",
    ),
    Option("carbon_intensity", "grid carbon intensity in gCO2e/kWh (overrides the country).", "G"),
    Option("carbon_cpu_watts", "CPU power at full load of the vCPUs this run may use.", "W"),
    Option("carbon_ram_watts", "RAM power in watts.", "W"),
    Option("carbon_pue", "power usage effectiveness of the data centre (default 1.0).", "PUE"),
    Option(
        "carbon_detect",
        "run codecarbon's hardware detection (and its own estimate) even when pytest's cache "
        "holds this machine's detection from an earlier run.",
        flag=True,
    ),
    Option(
        "carbon_summary",
        "append a markdown job summary to PATH (default: $GITHUB_STEP_SUMMARY when set; "
        "'none' turns it off).",
        "PATH",
    ),
    Option("carbon_pr_comment", "write a compact markdown pull-request comment to PATH.", "PATH"),
    Option("carbon_csv", "write one CSV row per test and the session, codecarbon columns.", "PATH"),
    Option("carbon_gitlab_metrics", "write GitLab merge-request metrics (OpenMetrics).", "PATH"),
    Option("carbon_html", "write a self-contained HTML report to PATH.", "PATH"),
    Option(
        "carbon_compare_regions",
        "grids to compare with: ISO3 codes, provider:region or 'greenest' (repeatable or "
        "comma-separated; 'none' turns it off; default a common set).",
        "REGION",
        repeat=True,
    ),
    Option("carbon_baseline", "compare with an earlier --carbon-json report.", "OLD.json"),
    Option(
        "carbon_fail_on_regression",
        "fail when the tests in both runs use over PCT percent more energy than in the baseline.",
        "PCT",
    ),
    Option("carbon_max_emissions", "fail the session when it emits more than G gCO2e.", "G"),
    Option(
        "carbon_plan",
        "deselect the tests that a test plan (pytest-carbon matrix plan-tests) says another "
        "job of the matrix covers; needs the job name (--carbon-job).",
        "PLAN.json",
    ),
    Option(
        "carbon_plan_max_age_days",
        "run every test when the test plan is older than DAYS (default 14).",
        "DAYS",
    ),
)


def flag_of(name: str) -> str:
    """``carbon_top`` → ``--carbon-top``."""
    return "--" + name.replace("_", "-")


def env_of(name: str) -> str:
    """``carbon_top`` → ``PYTEST_CARBON_TOP`` (and ``carbon`` → ``PYTEST_CARBON``)."""
    return "PYTEST_" + name.upper()


def add_options(parser: pytest.Parser) -> None:
    """Declare the ``carbon`` option group and the ini keys."""
    group = parser.getgroup(GROUP, "carbon footprint (pytest-carbon)")
    for option in OPTIONS:
        env_help = f" [env {env_of(option.name)}]"
        if option.flag:
            group.addoption(
                flag_of(option.name),
                action="store_true",
                default=None,
                dest=option.name,
                help=option.help + env_help,
            )
            parser.addini(option.name, option.help, type="bool", default=None)
        elif option.repeat:
            group.addoption(
                flag_of(option.name),
                action="append",
                default=None,
                dest=option.name,
                metavar=option.metavar,
                help=option.help + env_help,
            )
            parser.addini(option.name, option.help, type="linelist", default=[])
        else:
            group.addoption(
                flag_of(option.name),
                default=None,
                dest=option.name,
                metavar=option.metavar,
                help=option.help + env_help,
            )
            parser.addini(option.name, option.help, default="")


def raw_value(config: pytest.Config, name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The option's value by precedence: command line, ini, environment; None when unset."""
    value = config.getoption(name, default=None)
    if value is not None:
        return value
    ini = config.getini(name)
    if ini not in (None, "", []):
        return ini
    env = (os.environ if environ is None else environ).get(env_of(name))
    if env not in (None, ""):
        return env.split(",") if any(o.repeat and o.name == name for o in OPTIONS) else env
    return None


def parse_bool(name: str, value: Any) -> bool:
    """A flag from the command line, ini or environment (1/true/yes/on)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise pytest.UsageError(f"{flag_of(name)}: expected true or false, got {value!r}.")


def parse_number(name: str, value: Any, *, minimum: float, inclusive: bool = True) -> float:
    """A float at or above ``minimum`` (strictly above when not ``inclusive``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"{flag_of(name)}: expected a number, got {value!r}. Fix: pass e.g. {flag_of(name)}=42."
        ) from None
    below = number < minimum if inclusive else number <= minimum
    if below or number != number or number == float("inf"):
        bound = f"at least {minimum:g}" if inclusive else f"greater than {minimum:g}"
        raise pytest.UsageError(f"{flag_of(name)}: must be {bound}, got {value!r}.")
    return number


def parse_top(name: str, value: Any) -> int:
    """A non-negative whole number of tests."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise pytest.UsageError(
            f"{flag_of(name)}: expected a whole number of tests (0 or more), got {value!r}."
        )
    return number


def parse_country(name: str, value: Any) -> str:
    """An ISO 3166 alpha-3 code that codecarbon has grid data for."""
    from pytest_carbon.meter.intensity import UnknownCountryError, country_intensity

    code = str(value).strip().upper()
    try:
        country_intensity(code)
    except UnknownCountryError:
        hint = " (that looks like an alpha-2 code)" if len(code) == 2 else ""
        raise pytest.UsageError(
            f"{flag_of(name)}: unknown country code {value!r}{hint}. Fix: use an ISO 3166 "
            "alpha-3 code such as FRA, USA or DEU, or set --carbon-intensity in gCO2e/kWh."
        ) from None
    return code


def parse_matrix(name: str, value: Any) -> dict[str, str]:
    """``key=value`` pairs (list or comma-separated) as a dict."""
    items = value if isinstance(value, list) else str(value).split(",")
    matrix: dict[str, str] = {}
    for item in items:
        key, sep, val = str(item).partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(
                f"{flag_of(name)}: expected KEY=VALUE, got {item!r}. Fix: e.g. "
                f"{flag_of(name)} python=3.12 {flag_of(name)} db=postgres."
            )
        matrix[key.strip()] = val.strip()
    return matrix


def parse_path_or_none(name: str, value: Any) -> str | None:
    """A file path; ``none`` (any case) or an empty value turns the output off."""
    text = str(value).strip()
    return None if text.lower() in ("", "none") else text


def parse_regions(name: str, value: Any) -> tuple[str, ...]:
    """Grids to compare with (``FRA``, ``gcp:europe-west9``, ``greenest``); ``none`` for none."""
    from pytest_carbon.report.compare import REGION_FIX, UnknownRegionError, region_keys

    try:
        return region_keys(value if isinstance(value, list) else str(value))
    except UnknownRegionError as exc:
        raise pytest.UsageError(f"{flag_of(name)}: {exc}. Fix: {REGION_FIX}") from None


def check_regression_limit(limit: float | None, baseline: str | None) -> None:
    """A regression limit needs a baseline to compare with."""
    if limit is not None and baseline is None:
        raise pytest.UsageError(
            "--carbon-fail-on-regression: no baseline to compare with. Fix: add "
            "--carbon-baseline OLD.json (a report written by --carbon-json)."
        )


def default_summary_path(environ: Mapping[str, str] | None = None) -> str | None:
    """GitHub Actions' job summary file, when the job has one."""
    return (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY") or None


@dataclass(frozen=True)
class Settings:
    """The validated options of one session."""

    enabled: bool = False
    top: int = 10
    json_path: str | None = None
    job: str | None = None
    matrix: dict[str, str] = field(default_factory=dict)
    country: str | None = None
    intensity: float | None = None
    cpu_watts: float | None = None
    ram_watts: float | None = None
    pue: float = 1.0
    detect: bool = False
    summary_path: str | None = None
    pr_comment_path: str | None = None
    csv_path: str | None = None
    gitlab_metrics_path: str | None = None
    html_path: str | None = None
    compare_regions: tuple[str, ...] = ()
    baseline_path: str | None = None
    fail_on_regression: float | None = None
    max_emissions: float | None = None
    plan_path: str | None = None
    plan_max_age_days: float = DEFAULT_PLAN_MAX_AGE_DAYS


def default_regions() -> tuple[str, ...]:
    """The grids compared with when the user names none."""
    from pytest_carbon.report.compare import DEFAULT_REGIONS

    return DEFAULT_REGIONS


def read_settings(config: pytest.Config, environ: Mapping[str, str] | None = None) -> Settings:
    """Validate every option of ``config``; raise :class:`pytest.UsageError` on a bad one."""

    def get(name: str, parse: Callable[[str, Any], Any], default: Any = None) -> Any:
        value = raw_value(config, name, environ)
        return default if value is None else parse(name, value)

    summary_raw = raw_value(config, "carbon_summary", environ)
    settings = Settings(
        enabled=get("carbon", parse_bool, False),
        top=get("carbon_top", parse_top, 10),
        json_path=get("carbon_json", lambda _n, v: str(v)),
        job=get("carbon_job", lambda _n, v: str(v)),
        matrix=get("carbon_matrix", parse_matrix, {}),
        country=get("carbon_country", parse_country),
        intensity=get("carbon_intensity", lambda n, v: parse_number(n, v, minimum=0.0)),
        cpu_watts=get(
            "carbon_cpu_watts", lambda n, v: parse_number(n, v, minimum=0.0, inclusive=False)
        ),
        ram_watts=get("carbon_ram_watts", lambda n, v: parse_number(n, v, minimum=0.0)),
        pue=get("carbon_pue", lambda n, v: parse_number(n, v, minimum=1.0), 1.0),
        detect=get("carbon_detect", parse_bool, False),
        summary_path=(
            default_summary_path(environ)
            if summary_raw is None
            else parse_path_or_none("carbon_summary", summary_raw)
        ),
        pr_comment_path=get("carbon_pr_comment", parse_path_or_none),
        csv_path=get("carbon_csv", parse_path_or_none),
        gitlab_metrics_path=get("carbon_gitlab_metrics", parse_path_or_none),
        html_path=get("carbon_html", parse_path_or_none),
        compare_regions=get("carbon_compare_regions", parse_regions, default_regions()),
        baseline_path=get("carbon_baseline", parse_path_or_none),
        fail_on_regression=get(
            "carbon_fail_on_regression", lambda n, v: parse_number(n, v, minimum=0.0)
        ),
        max_emissions=get("carbon_max_emissions", lambda n, v: parse_number(n, v, minimum=0.0)),
        **plan_options(get),
    )
    check_regression_limit(settings.fail_on_regression, settings.baseline_path)
    return settings


def plan_options(get: Callable[..., Any]) -> dict[str, Any]:
    """The ``Settings`` fields of ``--carbon-plan`` and ``--carbon-plan-max-age-days``."""
    return {
        "plan_path": get("carbon_plan", parse_path_or_none),
        "plan_max_age_days": get(
            "carbon_plan_max_age_days",
            lambda n, v: parse_number(n, v, minimum=0.0),
            DEFAULT_PLAN_MAX_AGE_DAYS,
        ),
    }


def read_plan_settings(config: pytest.Config, environ: Mapping[str, str] | None = None) -> Settings:
    """What a test plan needs (plan, age limit, job, matrix): ``--carbon-plan`` without --carbon."""

    def get(name: str, parse: Callable[[str, Any], Any], default: Any = None) -> Any:
        value = raw_value(config, name, environ)
        return default if value is None else parse(name, value)

    return Settings(
        job=get("carbon_job", lambda _n, v: str(v)),
        matrix=get("carbon_matrix", parse_matrix, {}),
        **plan_options(get),
    )
