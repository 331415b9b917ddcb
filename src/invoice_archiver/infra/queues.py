"""The pipeline's queues: the invoice queue, the listing queue and the DLQ both redrive to.

Only the lister may send to the two work queues (a queue policy on `aws:PrincipalArn`), no other queue
may use them as its DLQ, and a message moves to the DLQ after `max_receive_count` receives.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from invoice_archiver.infra import checkov
from invoice_archiver.infra.constants import DLQ_RETENTION_DAYS, INVOICE_QUEUE_RETENTION_DAYS
from invoice_archiver.infra.settings import DeploySettings


@dataclass(frozen=True)
class Queues:
    dead_letter: sqs.Queue
    invoice: sqs.Queue
    listing: sqs.Queue  # a listing that outgrows one invocation continues here; the lister consumes it


def build_queues(scope: Construct, settings: DeploySettings, key: kms.IKey | None) -> Queues:
    encryption = sqs.QueueEncryption.KMS if key else sqs.QueueEncryption.SQS_MANAGED
    dead_letter = sqs.Queue(
        scope,
        "DeadLetterQueue",
        encryption=encryption,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(DLQ_RETENTION_DAYS),
    )

    def work_queue(construct_id: str, visibility_seconds: int) -> sqs.Queue:
        """A queue a function consumes: encrypted, TLS only, redriven to the DLQ after max_receive_count."""
        return sqs.Queue(
            scope,
            construct_id,
            encryption=encryption,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(INVOICE_QUEUE_RETENTION_DAYS),
            visibility_timeout=Duration.seconds(visibility_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letter, max_receive_count=settings.max_receive_count
            ),
            # No other queue may name this one as its dead-letter queue (the default lets any queue of
            # the account do so): SQS would move that queue's messages in, past the queue policy that
            # admits only the lister's SendMessage.
            redrive_allow_policy=sqs.RedriveAllowPolicy(redrive_permission=sqs.RedrivePermission.DENY_ALL),
        )

    queues = Queues(
        dead_letter=dead_letter,
        invoice=work_queue("InvoiceQueue", settings.visibility_timeout_seconds),
        listing=work_queue("ListingQueue", settings.listing_visibility_timeout_seconds),
    )
    if key is None:
        for queue in (queues.dead_letter, queues.invoice, queues.listing):
            checkov.skip(queue, checkov.QUEUE_SQS_MANAGED_SSE)
    return queues


def only_the_lister_sends(queue: sqs.Queue, lister_role_arn: str) -> None:
    """A message the lister did not write never reaches a function, whoever else in the account is allowed
    sqs:SendMessage."""
    queue.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyTheListerSends",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": lister_role_arn}},
        )
    )
