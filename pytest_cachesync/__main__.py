"""Command line tools of pytest-cachesync: ``python -m pytest_cachesync COMMAND``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: python -m pytest_cachesync COMMAND [ARGS]

commands:
  merge-reports -o OUT REPORT...   merge the JSON cache reports of test shards
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "merge-reports":
        from .staleness.merge_reports import main as merge_reports

        return merge_reports(rest)
    print(f"unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
