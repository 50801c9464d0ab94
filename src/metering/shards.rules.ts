/**
 * Settlement shards, pure: no knex, no Temporal client, no Node I/O, so
 * workflows may import it too.
 *
 * An account belongs to shard `low 32 bits of its id mod shards`. Account ids
 * are random UUIDs (gen_random_uuid), whose last eight hex digits are random,
 * so that is already a uniform hash; for sequential ids it spreads them
 * round-robin. PostgreSQL computes the same value (shardSql), so a sweep finds
 * a shard's accounts in SQL without a column of its own.
 */

const UUID = /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;

/** Whether PostgreSQL reads this as a uuid (its canonical form, upper case, without hyphens, in braces). */
export function isAccountId(value: string): boolean {
  return UUID.test(value);
}

export function shardOf(accountId: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer, got ${shards}`);
  if (!isAccountId(accountId)) throw new RangeError(`account id ${accountId} is not a uuid`);
  // The last eight hex digits, whichever of PostgreSQL's uuid spellings it came in.
  return parseInt(accountId.replace(/[^0-9a-f]/gi, '').slice(-8), 16) % shards;
}

/** shardOf in SQL for a uuid expression; the cast through bit(32) to bigint is unsigned, like parseInt. */
export function shardSql(accountExpr: string): string {
  return `(('x' || right(${accountExpr}::text, 8))::bit(32)::bigint % ?::int)`;
}

/** Shard numbers 0..shards-1. */
export function allShards(shards: number): number[] {
  return Array.from({ length: shards }, (_, i) => i);
}
