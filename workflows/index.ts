export { accountMetering } from './accountMetering';
export { dataSubjectRequest } from './dataSubjectRequest';
export { healthProbe } from './healthProbe';
export { invoiceAccount } from './invoiceAccount';
export { invoiceRun } from './invoiceRun';
export { metadataExpiry } from './metadataExpiry';
export { reconcile } from './reconcile';
export { topUp } from './topUp';
