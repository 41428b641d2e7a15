"""The command line: ``python -m deployment COMMAND``.

    python -m deployment demo [--out build/demo]   the production story, end to end
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment", description="Take a model to production.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the whole production story with this package")
    demo.add_argument("--out", default="build/demo", help="folder for the plots and model files")

    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.out)
    return 2


if __name__ == "__main__":
    sys.exit(main())
