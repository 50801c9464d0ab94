export { accountMetering } from './accountMetering';
export { healthProbe } from './healthProbe';
export { invoiceAccount } from './invoiceAccount';
export { invoiceRun } from './invoiceRun';
export { topUp } from './topUp';
