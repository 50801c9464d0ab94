import type { Db, DbOrTrx } from '../db/knex';
import type { StatementRow } from './providerStatement.rules';

// Providers' usage statements, which the provider_usage check compares with our metering.

/** Stores a statement's rows; a row for a day and model already imported is replaced (a provider's corrected statement). */
export async function upsertStatementRows(trx: DbOrTrx, input: { provider: string; rows: StatementRow[]; sha256: string; actor: string }): Promise<void> {
  for (let i = 0; i < input.rows.length; i += 1_000) {
    await trx('provider_statements')
      .insert(
        input.rows.slice(i, i + 1_000).map((r) => ({
          provider: input.provider,
          day: r.day,
          model: r.model,
          input_tokens: r.inputTokens,
          cached_tokens: r.cachedTokens,
          output_tokens: r.outputTokens,
          cost: r.cost,
          currency: r.currency,
          source_sha256: input.sha256,
          imported_by: input.actor,
          imported_at: trx.fn.now(),
        })),
      )
      .onConflict(['provider', 'day', 'model'])
      .merge();
  }
}

/** The provider's name as stored, or undefined if there is no such provider. */
export async function providerNamed(db: Db, name: string): Promise<string | undefined> {
  const provider = await db('providers').where({ name }).first('name');
  return provider?.name;
}
