"""The DynamoDB ledger: the idempotency record and the archive's index, one typed state machine.

* states.py: every status, the events that move it and the transition table (docs/ledger.md draws it),
  and the states `invoice-archiver status` derives (in flight, stuck, in the DLQ);
* records.py: the items, typed (InvoiceRecord, SourceRecord), and the one conditional write;
* invoices.py: claim, archive, retry or fail an invoice, and read invoices;
* rechecks.py: the re-check's lease on an archived invoice, and the confirmation that an event was sent;
* lister_view.py: what the lister compares (one Query per account and period);
* unsettled.py: the sparse index of invoices not settled yet, which every scheduled run re-queues;
* source_records.py: a source that could not be read, beside its invoices;
* item_size.py: every item stays far below DynamoDB's 400 KB.
"""
