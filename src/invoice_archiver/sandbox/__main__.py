"""``python -m invoice_archiver.sandbox ...``: the same as ``invoice-archiver sandbox ...``."""

from __future__ import annotations

import sys

from invoice_archiver.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["sandbox", *sys.argv[1:]]))
