/**
 * Workflow ids are business keys: starting the same process twice finds the
 * running (or finished) one instead of creating a duplicate.
 */
export const workflowIds = {
  healthProbe: (probeId: string) => `health-probe:${probeId}`,
  metering: (accountId: string) => `metering:${accountId}`,
  topUp: (paymentId: string) => `topup:${paymentId}`,
  invoiceRun: (period: string) => `invoice-run:${period}`,
  invoice: (accountId: string, period: string) => `invoice:${accountId}:${period}`,
  dsr: (requestId: string) => `dsr:${requestId}`,
} as const;
