/** Types shared by workflows and their callers. Ids and amounts only, never payload or personal data. */

export interface HealthProbeInput {
  probeId: string;
}

export interface HealthProbeResult {
  probeId: string;
  /** Time as PostgreSQL saw it, proving a worker reached the database. */
  databaseTime: string;
  migrationsApplied: number;
  migrationsPending: number;
}
