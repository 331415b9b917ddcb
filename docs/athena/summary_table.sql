-- invoice_summaries: one row per archived invoice, its latest summary as the archive holds it.
--
-- Fed by `invoice-archiver report --period YYYY-MM --format jsonl` (each invoice's latest summary.json
-- or revision, one JSON object per line), copied to
--   s3://ANALYTICS_BUCKET/invoice-summaries/period=YYYY-MM/summaries.jsonl
-- Replace ANALYTICS_BUCKET (twice) before running this in Athena. See docs/athena/README.md for why the
-- table does not read the archive folders directly.
--
-- Amounts stay strings: they are the API's decimal strings; CAST(... AS DECIMAL(38, 10)) to compute.
-- Timestamps are ISO 8601 with offset: from_iso8601_timestamp(invoice_summary.issueddate).
CREATE EXTERNAL TABLE IF NOT EXISTS invoice_summaries (
  schema_version int,
  account_id string,
  invoice_id string,
  billing_period string,
  archived_at string,
  revision int,
  previous_summary_key string,
  changes struct<
    summary_changed: boolean,
    changed_fields: array<string>,
    new_documents: array<string>,
    documents_no_longer_listed: array<string>>,
  documents_no_longer_listed array<string>,
  documents array<struct<
    document_type: string,
    document_id: string,
    key: string,
    content_type: string,
    size: bigint,
    sha256: string,
    omitted_by_api: array<string>,
    type_recognized: boolean>>,
  invoice_summary struct<
    AccountId: string,
    InvoiceId: string,
    IssuedDate: string,
    DueDate: string,
    BillSourceAccounts: array<string>,
    BillSourceAccountsTotalCount: int,
    ReceiverRole: string,
    Entity: struct<InvoicingEntity: string, BillingEntity: string>,
    BillingPeriod: struct<Month: int, Year: int>,
    InvoiceFrequency: string,
    BillType: string,
    InvoiceType: string,
    CommercialInvoiceId: string,
    OriginalInvoiceId: string,
    PurchaseOrderNumber: string,
    EinvoiceDeliveryStatus: string,
    TaxAuthorityStatus: string,
    BaseCurrencyAmount: struct<
      TotalAmount: string,
      TotalAmountBeforeTax: string,
      CurrencyCode: string,
      AmountBreakdown: struct<
        SubTotalAmount: string,
        Discounts: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>,
        Taxes: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>,
        Fees: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>>,
      CurrencyExchangeDetails: struct<SourceCurrencyCode: string, TargetCurrencyCode: string, Rate: string>>,
    TaxCurrencyAmount: struct<
      TotalAmount: string,
      TotalAmountBeforeTax: string,
      CurrencyCode: string,
      AmountBreakdown: struct<
        SubTotalAmount: string,
        Discounts: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>,
        Taxes: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>,
        Fees: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>>,
      CurrencyExchangeDetails: struct<SourceCurrencyCode: string, TargetCurrencyCode: string, Rate: string>>,
    PaymentCurrencyAmount: struct<
      TotalAmount: string,
      TotalAmountBeforeTax: string,
      CurrencyCode: string,
      AmountBreakdown: struct<
        SubTotalAmount: string,
        Discounts: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>,
        Taxes: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>,
        Fees: struct<Breakdown: array<struct<Description: string, Amount: string, Rate: string>>, TotalAmount: string>>,
      CurrencyExchangeDetails: struct<SourceCurrencyCode: string, TargetCurrencyCode: string, Rate: string>>>
)
PARTITIONED BY (period string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://ANALYTICS_BUCKET/invoice-summaries/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.period.type' = 'date',
  'projection.period.format' = 'yyyy-MM',
  'projection.period.range' = '2017-01,NOW',
  'projection.period.interval' = '1',
  'projection.period.interval.unit' = 'MONTHS',
  'storage.location.template' = 's3://ANALYTICS_BUCKET/invoice-summaries/period=${period}/'
);
