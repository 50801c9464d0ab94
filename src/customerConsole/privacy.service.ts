import { z } from 'zod';
import { ValidationError } from '../errors';
import { CONSOLE_DSR_TYPES, type ConsoleDsrType, type PrivacyService } from '../privacy/privacy.service';
import { DSR_TYPE_LABEL, type Correction } from '../privacy/rights.rules';
import type { CustomerSession } from './customerConsole.service';

/**
 * The customer console's Privacy page (issue 26): the signed-in user's own
 * data-subject requests. The person is always the session's user (their email,
 * their account); their sign-in verified who they are, so a request goes
 * straight to the `dsr:{id}` workflow as a verified one and is fulfilled there
 * like any other. Form values are validated here; the privacy service checks
 * a correction's values against the staff schemas.
 */
export { CONSOLE_DSR_TYPES, DSR_TYPE_LABEL };

/** The user's fields a correction filed here may change. */
export const CONSOLE_CORRECTABLE = ['name', 'phone', 'job_title'] as const;

const one = (max: number) => z.string().max(max).optional();
/** The rights filed through the requests form; a copy (access, portability) goes through the download form. */
export const FILED_TYPES = CONSOLE_DSR_TYPES.filter((t): t is Exclude<ConsoleDsrType, 'access' | 'portability'> => t !== 'access' && t !== 'portability');
const fileForm = z.object({
  type: z.enum(FILED_TYPES),
  name: one(200),
  phone: one(50),
  job_title: one(200),
});
const downloadForm = z.object({ format: z.enum(['access', 'portability']) });

function invalid(field: string, message: string): never {
  throw new ValidationError(`${field}: ${message}`, [{ field, message }]);
}

export function consolePrivacyService({ privacy }: { privacy: PrivacyService }) {
  const person = (s: Pick<CustomerSession, 'userId' | 'accountId'>) => ({ userId: s.userId, accountId: s.accountId });
  return {
    /** The page: the user's requests (newest first) and the model providers their API requests went to. */
    async page(s: Pick<CustomerSession, 'userId' | 'accountId'>) {
      return { requests: await privacy.requestsBySignIn(person(s)), providers: await privacy.providersOfSignedIn(person(s)) };
    },

    request: (s: Pick<CustomerSession, 'userId'>, id: string) => privacy.requestBySignIn({ userId: s.userId }, id),

    /** "Download a copy of your data": an access (everything) or portability (what you provided, machine-readable) request. */
    async download(s: Pick<CustomerSession, 'userId' | 'accountId'>, raw: Record<string, unknown>) {
      const parsed = downloadForm.safeParse(raw);
      if (!parsed.success) invalid('format', 'choose a full copy or a portable copy');
      return privacy.fileBySignIn(person(s), { type: parsed.data.format });
    },

    /** Any other right: correction (with the new values), deletion, restriction, objection, consent withdrawal. */
    async file(s: Pick<CustomerSession, 'userId' | 'accountId'>, raw: Record<string, unknown>) {
      const parsed = fileForm.safeParse(raw);
      if (!parsed.success) {
        const field = String(parsed.error.issues[0]?.path[0] ?? 'type');
        invalid(field, field === 'type' ? `must be one of ${FILED_TYPES.join(', ')}` : 'is too long or given twice');
      }
      const f = parsed.data;
      const type: ConsoleDsrType = f.type;
      if (type !== 'correction') return privacy.fileBySignIn(person(s), { type });
      const user: NonNullable<Correction['user']> = {};
      for (const k of CONSOLE_CORRECTABLE) {
        const v = f[k]?.trim();
        if (v) user[k] = v;
      }
      if (!Object.keys(user).length) invalid('name', 'a correction needs at least one new value');
      return privacy.fileBySignIn(person(s), { type, changes: { user } });
    },
  };
}

export type ConsolePrivacyService = ReturnType<typeof consolePrivacyService>;
