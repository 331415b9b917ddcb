-- invoice_reconciliation: a CUR 2.0 table against the archived summaries (invoice_summaries, from
-- summary_table.sql), per billing period, invoice and currency: the join `invoice-archiver reconcile`
-- makes, for teams that already query CUR 2.0 in Athena. See docs/reconciliation.md for the verdicts.
--
-- Replace CUR_TABLE with your CUR 2.0 table (the one Data Exports' Athena integration creates, or yours
-- over <prefix>/<export>/data/, partitioned by billing_period). What this view does not do, and the command
-- does: the ledger's detail for a missing invoice, the finality rules (run it once the month is final, see
-- docs/reconciliation.md) and the explanations of archived invoices the export does not cover.
--
-- Costs: CUR 2.0 stores line_item_unblended_cost as double. CAST(double AS DECIMAL(38, 10)) rounds each
-- value to 10 decimals, which gives back CUR's amounts (they have at most 10) before an exact sum. Summary
-- amounts are the API's decimal strings. The tolerance here is 0.01 in the invoice's currency; adjust it
-- (the command's default is one unit of each invoice's last decimal place).
CREATE OR REPLACE VIEW invoice_reconciliation AS
WITH cost AS (
  SELECT
    date_format(bill_billing_period_start_date, '%Y-%m') AS period,
    bill_invoice_id AS invoice_id,
    line_item_currency_code AS currency,
    array_join(array_agg(DISTINCT bill_payer_account_id), ',') AS payer_account_id,
    SUM(CASE WHEN line_item_line_item_type = 'Tax'
             THEN CAST(line_item_unblended_cost AS DECIMAL(38, 10)) ELSE 0 END) AS tax,
    SUM(CASE WHEN line_item_line_item_type <> 'Tax'
             THEN CAST(line_item_unblended_cost AS DECIMAL(38, 10)) ELSE 0 END) AS pre_tax,
    COUNT(*) AS lines
  FROM CUR_TABLE
  WHERE bill_invoice_id IS NOT NULL AND bill_invoice_id <> ''
  GROUP BY 1, 2, 3
),
archived AS (
  SELECT
    period,
    account_id,
    invoice_id,
    invoice_summary.invoicetype AS invoice_type,
    invoice_summary.originalinvoiceid AS original_invoice_id,
    invoice_summary.entity.invoicingentity AS invoicing_entity,
    invoice_summary.basecurrencyamount AS base,
    invoice_summary.taxcurrencyamount AS tax_section,
    invoice_summary.paymentcurrencyamount AS payment
  FROM invoice_summaries
),
joined AS (
  SELECT
    COALESCE(c.period, a.period) AS period,
    COALESCE(a.account_id, c.payer_account_id) AS account_id,
    COALESCE(c.invoice_id, a.invoice_id) AS invoice_id,
    a.invoice_type,
    a.original_invoice_id,
    a.invoicing_entity,
    c.currency,
    c.lines,
    c.pre_tax + c.tax AS cost_total,
    c.tax AS cost_tax,
    c.pre_tax AS cost_pre_tax,
    -- the invoice's amounts in the export's currency: base first, then tax, then payment currency
    CASE
      WHEN a.base.currencycode = c.currency THEN a.base
      WHEN a.tax_section.currencycode = c.currency THEN a.tax_section
      WHEN a.payment.currencycode = c.currency THEN a.payment
    END AS section,
    c.invoice_id IS NOT NULL AS in_cost_data,
    a.invoice_id IS NOT NULL AS archived
  FROM cost c
  FULL OUTER JOIN archived a ON a.invoice_id = c.invoice_id AND a.period = c.period
)
SELECT
  period,
  account_id,
  invoice_id,
  invoice_type,
  original_invoice_id,
  invoicing_entity,
  currency,
  lines,
  cost_total,
  CAST(section.totalamount AS DECIMAL(38, 10)) AS archived_total,
  cost_total - CAST(section.totalamount AS DECIMAL(38, 10)) AS difference_total,
  cost_tax - CAST(section.amountbreakdown.taxes.totalamount AS DECIMAL(38, 10)) AS difference_tax,
  cost_pre_tax - CAST(section.totalamountbeforetax AS DECIMAL(38, 10)) AS difference_pre_tax,
  CASE
    WHEN NOT archived THEN 'not_archived'
    WHEN NOT in_cost_data THEN 'not_in_cost_data'
    WHEN section IS NULL THEN 'currency_differs'
    WHEN abs(cost_total - CAST(section.totalamount AS DECIMAL(38, 10))) > 0.01
      OR abs(cost_tax - CAST(section.amountbreakdown.taxes.totalamount AS DECIMAL(38, 10))) > 0.01
      OR abs(cost_pre_tax - CAST(section.totalamountbeforetax AS DECIMAL(38, 10))) > 0.01
      THEN 'amounts_differ'
    ELSE 'matched'
  END AS verdict
FROM joined;

-- Every problem of a period, credit memos after the invoice they credit:
--   SELECT * FROM invoice_reconciliation
--   WHERE period = '2026-10' AND verdict <> 'matched'
--   ORDER BY account_id, COALESCE(original_invoice_id, invoice_id), original_invoice_id IS NOT NULL, invoice_id;
--
-- Lines without an invoice id (not final yet, or charges that never get an invoice):
--   SELECT bill_payer_account_id, bill_invoicing_entity, line_item_currency_code, COUNT(*) AS lines,
--          SUM(CAST(line_item_unblended_cost AS DECIMAL(38, 10))) AS amount
--   FROM CUR_TABLE
--   WHERE billing_period = '2026-10' AND (bill_invoice_id IS NULL OR bill_invoice_id = '')
--   GROUP BY 1, 2, 3;
