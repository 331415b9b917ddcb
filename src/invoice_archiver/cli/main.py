"""The `invoice-archiver` console script: one entry point, one module per subcommand.

Exit codes (every command): 0 ok; 1 invoices failed or problems found; 2 a usage or configuration
error, explained in one line; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from invoice_archiver import __version__
from invoice_archiver.cli import errors

EPILOG = """\
exit codes: 0 ok; 1 invoices failed, stuck or in the DLQ, or verify found problems;
            2 usage or configuration error; 130 interrupted
configuration: --stack NAME (a deployed stack), or the variables run-local reads
               (ARCHIVE_BUCKET, LEDGER_TABLE, ACCOUNT_IDS, AWS_ENDPOINT_URL, ...)
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (subcommands inherit this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(errors.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    from invoice_archiver.cli import backfill, reconcile, report, run_local, status, verify
    from invoice_archiver.sandbox import command as sandbox_command

    parser = Parser(
        prog="invoice-archiver",
        description="Archive AWS invoices to S3, exactly once; operate, verify and report on the archive.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sandbox_command.register(sub)
    run_local.register(sub)
    backfill.register(sub)
    status.register(sub)
    verify.register(sub)
    report.register(sub)
    reconcile.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print(f"invoice-archiver {args.command}: interrupted", file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as exc:
        problem = errors.explain(exc)
        if problem is None:
            raise
        print(f"invoice-archiver {args.command}: error: {problem}", file=sys.stderr)
        return problem.code
    return code


if __name__ == "__main__":
    sys.exit(main())
