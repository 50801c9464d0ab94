import { z } from 'zod';
import { createAccountInput, idInput } from '../staff/schemas';

/**
 * A change of an account's billing details (name, VAT id, billing email,
 * country), built from the very fields staff create an account with
 * (src/staff/schemas.ts), so no caller can store a value staff could not. The
 * name is required there and cannot be cleared; the optional ones can, with null.
 * Fields left out stay as they are.
 */
const account = createAccountInput.shape;
const clearable = <T extends z.ZodType>(field: z.ZodOptional<T>) => field.unwrap().nullable().optional();

export const updateAccountDetailsInput = z
  .strictObject({
    id: idInput.shape.id,
    name: account.name.optional(),
    vatId: clearable(account.vatId),
    billingEmail: clearable(account.billingEmail),
    country: clearable(account.country),
  })
  .refine((v) => v.name !== undefined || v.vatId !== undefined || v.billingEmail !== undefined || v.country !== undefined, {
    message: 'give at least one of name, vatId, billingEmail, country',
  });
export type UpdateAccountDetailsInput = z.input<typeof updateAccountDetailsInput>;
