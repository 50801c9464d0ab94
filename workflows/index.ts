export { accountMetering } from './accountMetering';
export { healthProbe } from './healthProbe';
export { topUp } from './topUp';
