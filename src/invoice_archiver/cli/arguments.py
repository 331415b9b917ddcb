"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse

from invoice_archiver.models.period import BillingPeriod


def billing_period(text: str) -> BillingPeriod:
    """argparse type for YYYY-MM, with the model's own error message."""
    try:
        return BillingPeriod.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
