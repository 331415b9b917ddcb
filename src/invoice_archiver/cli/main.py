"""The `invoice-archiver` console script: one entry point, one module per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from invoice_archiver.cli import run_local, status
    from invoice_archiver.sandbox import command as sandbox_command

    parser = argparse.ArgumentParser(
        prog="invoice-archiver",
        description="Archive AWS invoices to S3, exactly once. Run the pipeline locally or a sandbox.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sandbox_command.register(sub)
    run_local.register(sub)
    status.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
