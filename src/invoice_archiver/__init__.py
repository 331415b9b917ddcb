"""invoice-archiver: AWS invoices archived to S3 exactly once, with a DynamoDB ledger.

The Lambda code asset ships this package without its `cli`, `sandbox` and `infra` subpackages.
"""

__version__ = "0.2.0"
