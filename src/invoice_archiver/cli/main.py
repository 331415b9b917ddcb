"""The `invoice-archiver` console script: one entry point, one module per subcommand.

Exit codes (every command, see cli/errors.py): 0 ok; 1 invoices failed or problems found; 2 a usage or
configuration error, explained in one line; 130 interrupted; 141 the reader of stdout went away.

`main` is the one error boundary: whatever a person can cause or fix (a bad option, a broken AWS
configuration, an endpoint that does not answer, a disk that is full, a stdout that cannot be written)
ends in one line on stderr and its exit code. Nothing on the way to `--help` touches AWS: the subcommands
import the functions' handlers (whose import checks the SDK) only when they run them.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from invoice_archiver import __version__
from invoice_archiver.cli import errors

EPILOG = """\
exit codes: 0 ok; 1 invoices failed, stuck, queued with nothing working on them or in the DLQ,
            verify found problems, or verify/report matched nothing; 2 usage or configuration error;
            130 interrupted; 141 the reader of stdout went away
configuration: --stack NAME (a deployed stack), or the variables run-local reads
               (ARCHIVE_BUCKET, LEDGER_TABLE, ACCOUNT_IDS, AWS_ENDPOINT_URL, ...); AWS_PROFILE,
               AWS_REGION (or AWS_DEFAULT_REGION), AWS_MAX_ATTEMPTS as for any AWS tool
"""


# Errors of a stream the command writes (stdout; its log file handles its own): a full disk, a quota, a
# file-size limit, a broken pipe or device.
OUTPUT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EPIPE, errno.EIO})


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (subcommands inherit this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(errors.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    from invoice_archiver.cli import backfill, mark_unsettled, reconcile, report, run_local, status, verify
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
    mark_unsettled.register(sub)
    reconcile.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from invoice_archiver.cli import aws

        aws.prepare()
        code: int = args.run(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        _flush_or_discard_stdout()
        print(f"invoice-archiver {args.command}: interrupted", file=sys.stderr)
        return errors.INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return errors.READER_GONE
    except Exception as exc:
        written = _flush_or_discard_stdout()
        if isinstance(exc, OSError) and not exc.filename and (not written or exc.errno in OUTPUT_ERRORS):
            _discard_stdout()  # whatever is still buffered would fail again at exit
            problem: errors.CliError | None = errors.CliError(
                f"cannot write the output: {exc.strerror or exc}"
            )
        else:
            problem = errors.explain(exc)
        if problem is None:
            raise
        print(f"invoice-archiver {args.command}: error: {problem}", file=sys.stderr)
        return problem.code
    return code


def _flush_or_discard_stdout() -> bool:
    """Flush what the command printed; if stdout cannot take it (a full disk, a closed pipe), drop it,
    so that the interpreter's own flush at exit does not print a second error. False if dropped."""
    try:
        sys.stdout.flush()
    except OSError:
        _discard_stdout()
        return False
    return True


def _discard_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def entry() -> NoReturn:
    """The console script: `main`, then the exit. A command that loaded Arrow (reconcile) leaves without
    the interpreter's finalization, once its output is flushed: Arrow's thread pools torn down there can
    abort a process whose work is done ("terminate called without an active exception", exit -6; seen
    about once in 30 runs on a loaded machine, apache/arrow#34314)."""
    code = main()
    if "pyarrow" in sys.modules:
        _flush_or_discard_stdout()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
