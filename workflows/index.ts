export { accountMetering } from './accountMetering';
export { healthProbe } from './healthProbe';
