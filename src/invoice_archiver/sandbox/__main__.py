"""``python -m invoice_archiver.sandbox ...``: the same as ``invoice-archiver sandbox ...``."""

from __future__ import annotations

import argparse
import sys

from invoice_archiver.sandbox import command


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m invoice_archiver.sandbox")
    sub = parser.add_subparsers(dest="command")
    command.register(sub)
    args = parser.parse_args(["sandbox", *sys.argv[1:]])
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
