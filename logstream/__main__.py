"""Command line: ``python -m logstream demo``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from .demo import run_demo


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` if ``None``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="logstream", description="A framework-free run-log tracer (RFC 6902 patches)."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="trace a small fake agent loop and print its patches live")
    args = parser.parse_args(argv)
    if args.command == "demo":
        run_demo(sys.stdout, delay=0.02)
        return 0
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
