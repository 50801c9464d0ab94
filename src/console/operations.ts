import type { AccountsService } from '../accounts/accounts.service';
import type { DunningOperations } from '../invoicing/dunning.service';
import type { InvoicingService } from '../invoicing/invoicing.service';
import type { SuspensionService } from '../invoicing/suspension.service';
import type { LedgerService } from '../ledger/ledger.service';
import type { PrivacyService } from '../privacy/privacy.service';
import type { ProcessorModeService } from '../privacy/processorMode.service';
import type { RegisterService } from '../register/register.service';
import type { SubprocessorService } from '../register/subprocessor.service';
import type { ReconciliationService } from '../reconciliation/reconciliation.service';
import type { RetentionService } from '../retention/retention.service';
import type { WebhooksService } from '../webhooks/webhooks.service';

/**
 * The admin API's operations that the console's pages call (the admin app
 * passes its own, so both act alike). Declared here from the domain services,
 * not taken from src/admin, so the console does not depend on the admin API
 * that mounts it.
 */
export type ConsoleOperations = Pick<AccountsService, 'getAccount' | 'createKey' | 'listKeys'> &
  Pick<LedgerService, 'balance' | 'createTopUp' | 'refund' | 'adjust'> & {
    invoices: InvoicingService['invoices'];
    runs: InvoicingService['runs'];
    payments: InvoicingService['payments'];
    dunning: Pick<DunningOperations, 'account' | 'pause' | 'resume'>;
    suspension: Pick<SuspensionService, 'status' | 'reinstate'>;
    render: { pdf: (id: string) => Promise<Buffer> };
    reconciliation: ReconciliationService;
    dsr: PrivacyService;
    processorMode?: Pick<ProcessorModeService, 'list'>;
    retention: RetentionService;
    register: RegisterService;
    subprocessors: Pick<SubprocessorService, 'changes' | 'notices'>;
    webhooks: Pick<WebhooksService, 'listEndpoints' | 'listDeliveries' | 'redeliver'>;
  };

