import { healthService, type DatabaseHealth, type HealthDeps } from '../src/temporal/health.service';

export function healthActivities(deps: HealthDeps) {
  const health = healthService(deps);
  return {
    async checkDatabase(): Promise<DatabaseHealth> {
      return health.checkDatabase();
    },
  };
}
