"""The ``pytest-carbon`` command: ``report`` re-renders reports; ``matrix`` learns from CI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_carbon import __version__
from pytest_carbon.errors import CarbonError


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser, with every subcommand registered."""
    from pytest_carbon.matrix.cli import add_matrix_parser
    from pytest_carbon.report.cli import add_report_parser

    parser = argparse.ArgumentParser(
        prog="pytest-carbon",
        description="Energy and carbon reports of pytest sessions, and CI matrix planning.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-carbon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_report_parser(commands)
    add_matrix_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; errors the user can fix are one line on stderr and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except CarbonError as exc:
        print(f"pytest-carbon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pytest-carbon: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
