"""``python -m course_lib.weights list | build NAME [--out FILE] | check [NAME ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib import weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.weights", description="The course's shipped weights."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="name, file size, training time, recipe, headline metric")
    b = sub.add_parser("build", help="retrain one checkpoint with its recipe and save it")
    b.add_argument("name", choices=weights.names())
    b.add_argument("--out", type=Path, help="write here instead of the shipped file")
    c = sub.add_parser("check", help="reload every file safely and recompute its metric")
    c.add_argument("names", nargs="*", metavar="NAME", help="default: all of them")
    args = parser.parse_args(argv)

    if args.command == "list":
        print("\n".join(weights.describe(name) for name in weights.names()))
        return 0
    if args.command == "build":
        _, info = weights.build(args.name, out=args.out)
        out = args.out or weights.entry(args.name).path
        print(f"saved {out} ({out.stat().st_size / 2**20:.2f} MB) in {info['train_seconds']} s")
        print(f"{info['metric']} = {info['value']:.4g}")
        return 0
    problems = weights.check(args.names or None)
    for problem in problems:
        print("FAIL:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
