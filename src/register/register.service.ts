import { z } from 'zod';
import type { Clock } from '../clock';
import type { Db } from '../db/knex';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { pageLimit } from '../staff/schemas';
import { validate } from '../shared/validate';
import { oneLine } from '../shared/text';
import * as data from './register.data';
import type { Client } from '@temporalio/client';
import { recordSubprocessorChange, startSubprocessorChange } from './subprocessor.service';
import type { SubprocessorChangeInput } from '../../workflows/messages';
import { LEGAL_BASES, RECIPIENT_KINDS, RECIPIENT_ROLES, TRANSFER_MECHANISMS, isCountryCode, missingRecipientFacts } from './register.rules';

/**
 * The processing register for compliance staff and admins (issue 25;
 * docs/processing-register.md): processing activities and recipients, read
 * and changed through the admin API, the CLI and the console alike. Every
 * change writes a register_changes row, in the same transaction, with who,
 * why and the entry before and after. `completeness()` is what the console
 * flags: each provider whose entry is missing or lacks facts.
 */

const line = oneLine;
const list = (field: string, max: number) =>
  z
    .array(line(field, 1, 100), { error: `${field} must be a list of text` })
    .min(1, `${field} needs at least one entry`)
    .max(max, `${field} holds at most ${max} entries`)
    .refine((v) => new Set(v).size === v.length, `${field} lists an entry twice`);
const reason = line('reason', 3, 500);
const date = (field: string) => z.iso.date({ error: `${field} must be a real date (YYYY-MM-DD)` });
const countries = z
  .array(z.string().refine(isCountryCode, 'a country is an ISO 3166-1 alpha-2 code in capitals (DE, US)'), { error: 'countries must be a list of country codes' })
  .max(50, 'countries holds at most 50 codes')
  .refine((v) => new Set(v).size === v.length, 'countries lists a code twice');
const retentionCategory = z.string().trim().min(1).max(100).nullable();
/** The kinds of recipient the activity discloses data to; null: not stated (the record then names every recipient). */
const recipientKinds = z
  .array(z.enum(RECIPIENT_KINDS, { error: `recipientKinds: each must be one of ${RECIPIENT_KINDS.join(', ')}` }), { error: 'recipientKinds must be a list of recipient kinds' })
  .max(RECIPIENT_KINDS.length)
  .refine((v) => new Set(v).size === v.length, 'recipientKinds lists a kind twice')
  .nullable();

const activityFields = {
  purpose: line('purpose', 3, 500),
  legalBasis: z.enum(LEGAL_BASES, { error: `legalBasis must be one of ${LEGAL_BASES.join(', ')}` }),
  dataSubjectCategories: list('dataSubjectCategories', 20),
  dataCategories: list('dataCategories', 30),
  systems: list('systems', 20),
  retentionCategory,
  recipientKinds,
};
export const createActivityInput = z.strictObject({
  key: z.string().regex(/^[a-z][a-z0-9_]{1,62}$/, 'key: 2-63 characters, lower-case letters, digits and _, starting with a letter'),
  ...activityFields,
  retentionCategory: retentionCategory.optional(),
  recipientKinds: recipientKinds.optional(),
  reason,
});
export const updateActivityInput = z.strictObject({ ...z.object(activityFields).partial().shape, reason });

const recipientFacts = {
  role: z.enum(RECIPIENT_ROLES, { error: `role must be one of ${RECIPIENT_ROLES.join(', ')}` }).nullable(),
  countries,
  transferMechanism: z.enum(TRANSFER_MECHANISMS, { error: `transferMechanism must be one of ${TRANSFER_MECHANISMS.join(', ')}` }).nullable(),
  sccDate: date('sccDate').nullable(),
  transferNote: line('transferNote', 1, 1000).nullable(),
  agreementRef: line('agreementRef', 1, 200).nullable(),
  agreementSignedOn: date('agreementSignedOn').nullable(),
};
export const createRecipientInput = z.strictObject({
  kind: z.enum(RECIPIENT_KINDS, { error: `kind must be one of ${RECIPIENT_KINDS.join(', ')}` }),
  /** model_provider: the providers row, by id or name; its name becomes the recipient's. */
  provider: z.string().trim().min(1).max(200).optional(),
  /** Other kinds: the recipient's name. */
  name: line('name', 1, 200).optional(),
  ...z.object(recipientFacts).partial().shape,
  reason,
});
export const updateRecipientInput = z.strictObject({ name: line('name', 1, 200).optional(), ...z.object(recipientFacts).partial().shape, reason });
export const listChangesInput = z.strictObject({
  limit: pageLimit(50),
  before: z.coerce.number({ error: 'before must be a change id' }).int().positive().optional(),
  entityId: z.uuid({ error: 'entityId must be an id' }).optional(),
});

type Activity = ReturnType<typeof activityView>;
type Recipient = ReturnType<typeof recipientView>;

function activityView(r: data.ActivityRow) {
  return {
    id: r.id,
    key: r.key,
    purpose: r.purpose,
    legalBasis: r.legal_basis,
    dataSubjectCategories: r.data_subject_categories,
    dataCategories: r.data_categories,
    systems: r.systems,
    retentionCategory: r.retention_category,
    recipientKinds: r.recipient_kinds,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

function recipientView(r: data.RecipientRow) {
  const facts = { role: r.role, countries: r.countries, transferMechanism: r.transfer_mechanism, sccDate: r.scc_date, agreementRef: r.agreement_ref };
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    providerId: r.provider_id,
    ...facts,
    transferNote: r.transfer_note,
    agreementSignedOn: r.agreement_signed_on,
    missing: missingRecipientFacts(facts),
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

/** The logged form of an entry: its facts without the timestamps (the log row has its own). */
const logged = ({ createdAt: _c, updatedAt: _u, missing: _m, ...rest }: Partial<Activity & Recipient>) => rest;

const ACTIVITY_COLUMNS = { purpose: 'purpose', legalBasis: 'legal_basis', dataSubjectCategories: 'data_subject_categories', dataCategories: 'data_categories', systems: 'systems', retentionCategory: 'retention_category', recipientKinds: 'recipient_kinds' } as const;
const RECIPIENT_COLUMNS = { name: 'name', role: 'role', countries: 'countries', transferMechanism: 'transfer_mechanism', sccDate: 'scc_date', transferNote: 'transfer_note', agreementRef: 'agreement_ref', agreementSignedOn: 'agreement_signed_on' } as const;

function columns(input: Record<string, unknown>, map: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, col] of Object.entries(map)) if (input[k] !== undefined) out[col] = input[k];
  return out;
}

const notFound = (what: string, id: string) => new NotFoundError(`${what} ${id} does not exist`);
const isUuid = (v: string) => z.uuid().safeParse(v).success;

/** Standard contractual clauses are named with their date (the table refuses one without). */
function checkScc(r: { transferMechanism?: string | null; sccDate?: string | null }) {
  if (r.transferMechanism === 'standard_contractual_clauses' && !r.sccDate) {
    throw new ValidationError('invalid input: sccDate: standard contractual clauses need their date', [{ field: 'sccDate', message: 'standard contractual clauses need their date' }]);
  }
}

/** A unique-name clash, said plainly instead of a 500. */
async function uniqueOr<T>(fn: () => Promise<T>, message: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new ConflictError(message);
    throw err;
  }
}

export interface RegisterDeps {
  db: Db;
  clock: Clock;
  /** Sub-processor notices: the period (SUBPROCESSOR_NOTICE_S) and where their workflows start; absent, 30 days and no start (`register notices resume` starts them). */
  subprocessors?: { noticePeriodMs: number; temporal?: { client: Client; taskQueue: string }; onStartError?: (err: unknown) => void };
}

const DEFAULT_NOTICE_MS = 30 * 86_400_000;

/** What a recipient change announced to agreement accounts (absent: nothing). */
export interface SubprocessorChangeSummary {
  id: string;
  accountsHeldBack: number;
  effectiveAt: string;
  /** False when Temporal could not be reached: `mixroute register notices resume` starts it. */
  workflowStarted: boolean;
}

export function registerService(deps: RegisterDeps) {
  const { db, clock } = deps;
  const noticePeriodMs = deps.subprocessors?.noticePeriodMs ?? DEFAULT_NOTICE_MS;

  /**
   * After the register change committed: the notice workflow. Its notices
   * already hold the recipient back, so a failed start loses nothing but the
   * emails' timing; `register notices resume` starts it again.
   */
  async function announced<T extends object>(result: { view: T; change: (SubprocessorChangeInput & { accounts: number }) | null }): Promise<T & { subprocessorChange?: SubprocessorChangeSummary }> {
    if (!result.change) return result.view;
    const { changeId, accounts } = result.change;
    const t = deps.subprocessors?.temporal;
    let workflowStarted = false;
    if (t) {
      try {
        await startSubprocessorChange(t.client, t.taskQueue, result.change);
        workflowStarted = true;
      } catch (err) {
        deps.subprocessors?.onStartError?.(err);
      }
    }
    return { ...result.view, subprocessorChange: { id: changeId, accountsHeldBack: accounts, effectiveAt: new Date(result.change.announcedAtMs + result.change.noticePeriodMs).toISOString(), workflowStarted } };
  }

  async function checkRetention(category: string | null | undefined) {
    if (category && !(await data.retentionCategoryExists(db, category))) {
      throw new ValidationError(`invalid input: retentionCategory: no retention category ${category}`, [{ field: 'retentionCategory', message: 'must be a retention policy category (mixroute retention policies)' }]);
    }
  }

  return {
    activities: {
      list: async () => (await data.listActivities(db)).map(activityView),

      async get(id: string) {
        const r = isUuid(id) ? await data.findActivity(db, id) : undefined;
        if (!r) throw notFound('processing activity', id);
        return activityView(r);
      },

      async create(raw: unknown, actor: string) {
        const input = validate(createActivityInput, raw);
        await checkRetention(input.retentionCategory);
        return uniqueOr(
          () =>
            db.transaction(async (trx) => {
              const row = await data.insertActivity(trx, {
                key: input.key,
                purpose: input.purpose,
                legal_basis: input.legalBasis,
                data_subject_categories: input.dataSubjectCategories,
                data_categories: input.dataCategories,
                systems: input.systems,
                retention_category: input.retentionCategory ?? null,
                recipient_kinds: input.recipientKinds ?? null,
              });
              const after = activityView(row);
              await data.insertChange(trx, { entityType: 'processing_activity', entityId: row.id, action: 'created', actor, reason: input.reason, before: null, after: logged(after), at: clock.now() });
              return after;
            }),
          `a processing activity with key ${input.key} exists`,
        );
      },

      async update(id: string, raw: unknown, actor: string) {
        const input = validate(updateActivityInput, raw);
        const patch = columns(input, ACTIVITY_COLUMNS);
        if (Object.keys(patch).length === 0) throw new ValidationError('invalid input: nothing to change', [{ field: '', message: 'name at least one field to change' }]);
        await checkRetention(input.retentionCategory);
        if (!isUuid(id)) throw notFound('processing activity', id);
        return db.transaction(async (trx) => {
          const before = await data.findActivity(trx, id, true);
          if (!before) throw notFound('processing activity', id);
          const after = activityView(await data.updateActivity(trx, id, patch, clock.now()));
          await data.insertChange(trx, { entityType: 'processing_activity', entityId: id, action: 'updated', actor, reason: input.reason, before: logged(activityView(before)), after: logged(after), at: clock.now() });
          return after;
        });
      },
    },

    recipients: {
      list: async () => (await data.listRecipients(db)).map(recipientView),

      async get(id: string) {
        const r = isUuid(id) ? await data.findRecipient(db, id) : undefined;
        if (!r) throw notFound('recipient', id);
        return recipientView(r);
      },

      async create(raw: unknown, actor: string) {
        const input = validate(createRecipientInput, raw);
        checkScc(input);
        let name: string;
        let providerId: string | null = null;
        if (input.kind === 'model_provider') {
          if (!input.provider || input.name !== undefined) {
            throw new ValidationError('invalid input: provider: a model provider is named by its provider (id or name), not by name', [{ field: 'provider', message: 'required for kind model_provider; name is taken from the provider' }]);
          }
          const p = await data.findProvider(db, isUuid(input.provider) ? { id: input.provider } : { name: input.provider });
          if (!p) throw new NotFoundError(`no provider ${input.provider}`);
          ({ id: providerId, name } = p);
        } else {
          if (!input.name || input.provider !== undefined) {
            throw new ValidationError('invalid input: name: required for a recipient that is not a model provider', [{ field: 'name', message: 'required for this kind; provider is only for kind model_provider' }]);
          }
          name = input.name;
        }
        return uniqueOr(
          () =>
            db.transaction(async (trx) => {
              const row = await data.insertRecipient(trx, { name, kind: input.kind, provider_id: providerId, ...columns(input, RECIPIENT_COLUMNS) });
              const after = recipientView(row);
              const at = clock.now();
              const registerChangeId = await data.insertChange(trx, { entityType: 'recipient', entityId: row.id, action: 'created', actor, reason: input.reason, before: null, after: logged(after), at });
              const change = await recordSubprocessorChange(trx, { registerChangeId, recipientId: row.id, before: null, after, noticePeriodMs, at });
              return { view: after, change };
            }),
          providerId ? `provider ${name} already has a register entry` : `a recipient named ${name} exists`,
        ).then(announced);
      },

      async update(id: string, raw: unknown, actor: string) {
        const input = validate(updateRecipientInput, raw);
        const patch = columns(input, RECIPIENT_COLUMNS);
        if (Object.keys(patch).length === 0) throw new ValidationError('invalid input: nothing to change', [{ field: '', message: 'name at least one field to change' }]);
        if (!isUuid(id)) throw notFound('recipient', id);
        return uniqueOr(
          () =>
            db.transaction(async (trx) => {
              const beforeRow = await data.findRecipient(trx, id, true);
              if (!beforeRow) throw notFound('recipient', id);
              const before = recipientView(beforeRow);
              // A model provider's entry carries its provider's name.
              if (before.kind === 'model_provider' && input.name !== undefined && input.name !== before.name) {
                throw new ValidationError('invalid input: name: a model provider entry is named after its provider', [{ field: 'name', message: 'cannot be changed for kind model_provider' }]);
              }
              checkScc({ transferMechanism: input.transferMechanism !== undefined ? input.transferMechanism : before.transferMechanism, sccDate: input.sccDate !== undefined ? input.sccDate : before.sccDate });
              const at = clock.now();
              const after = recipientView(await data.updateRecipient(trx, id, patch, at));
              const registerChangeId = await data.insertChange(trx, { entityType: 'recipient', entityId: id, action: 'updated', actor, reason: input.reason, before: logged(before), after: logged(after), at });
              const change = await recordSubprocessorChange(trx, { registerChangeId, recipientId: id, before, after, noticePeriodMs, at });
              return { view: after, change };
            }),
          `a recipient named ${input.name} exists`,
        ).then(announced);
      },
    },

    /**
     * Every provider with what its entry lacks (no entry at all is incomplete),
     * then every other recipient with what it lacks. `complete` is true when
     * nothing lacks anything.
     */
    async completeness() {
      const providers = (await data.providersWithRecipients(db)).map((p) => ({
        providerId: p.pid,
        provider: p.provider_name,
        recipientId: p.has_entry ? p.id : null,
        missing: p.has_entry ? missingRecipientFacts({ role: p.role, countries: p.countries, transferMechanism: p.transfer_mechanism, sccDate: p.scc_date, agreementRef: p.agreement_ref }) : ['register entry'],
      }));
      const others = (await data.listRecipients(db)).filter((r) => r.kind !== 'model_provider').map(recipientView).map((r) => ({ recipientId: r.id, name: r.name, kind: r.kind, missing: r.missing }));
      return { complete: [...providers, ...others].every((x) => x.missing.length === 0), providers, otherRecipients: others };
    },

    /** The change log, newest first; `before` is the last change id of the previous page. */
    async changes(raw: unknown = {}) {
      const page = validate(listChangesInput, raw ?? {});
      return (await data.listChanges(db, { limit: page.limit, before: page.before !== undefined ? String(page.before) : undefined, entityId: page.entityId })).map((c) => ({
        id: Number(c.id),
        entityType: c.entity_type,
        entityId: c.entity_id,
        action: c.action,
        actor: c.actor,
        reason: c.reason,
        before: c.before,
        after: c.after,
        changedAt: new Date(c.changed_at).toISOString(),
      }));
    },
  };
}

export type RegisterService = ReturnType<typeof registerService>;
