import { z } from 'zod';
import { createAccountInput, createUserInput } from '../staff/schemas';
import { CORRECTABLE_FIELDS } from './rights.rules';

/**
 * What a data-subject correction may change, validated by the very schemas
 * staff edits go through (src/staff/schemas.ts), so a subject can put nothing
 * into a record that staff could not. Fields staff must give (names, a user's
 * email) cannot be cleared; the optional ones can, with null.
 */
const clearable = <T extends z.ZodType>(field: z.ZodOptional<T>) => field.unwrap().nullable().optional();

const user = createUserInput.shape;
const account = createAccountInput.shape;

export const correctionChanges = z.strictObject({
  user: z
    .strictObject({
      name: user.name.optional(),
      email: user.email.optional(),
      phone: clearable(user.phone),
      job_title: clearable(user.jobTitle),
    } satisfies Record<(typeof CORRECTABLE_FIELDS.user)[number], z.ZodType>)
    .optional(),
  account: z
    .strictObject({
      name: account.name.optional(),
      billing_email: clearable(account.billingEmail),
      country: clearable(account.country),
      vat_id: clearable(account.vatId),
    } satisfies Record<(typeof CORRECTABLE_FIELDS.account)[number], z.ZodType>)
    .optional(),
});
export type CorrectionChanges = z.output<typeof correctionChanges>;

/** `user.name`, `account.vat_id`, ...: how fields are named in events, refusals and answers (never with values). */
export const changedFields = (changes: { user?: object; account?: object }): string[] =>
  (['user', 'account'] as const).flatMap((rec) => Object.keys(changes[rec] ?? {}).map((f) => `${rec}.${f}`));
