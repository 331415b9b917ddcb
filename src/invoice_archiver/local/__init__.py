"""The local Lambda runtime: what stands in for Lambda and its event sources on the sandbox.

`run-local`, `backfill` on a sandbox, the integration tests and the bench drive the real handlers through
it: a Lambda context (`lambda_context`), the SQS event source mapping (`event_source`), the resources the
stack would create (`resources`), one pass of the pipeline (`pipeline`) and the SDK's retry counters
(`api_counters`). Never part of the functions' code asset.
"""
