export { healthProbe } from './healthProbe';
