import { z } from 'zod';

/**
 * Free text that staff or clients type into a field that ends up in a log, a
 * terminal or a document: one line, bounded, without control characters, so it
 * cannot forge lines or move a terminal's cursor.
 */

/** C0 and C1 control characters (newlines, ESC...), by code point. */
export const hasControl = (v: string): boolean =>
  [...v].some((ch) => {
    const c = ch.codePointAt(0)!;
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
  });

/** `field`: trimmed, `min`-`max` characters, one line. */
export const oneLine = (field: string, min: number, max: number) =>
  z
    .string({ error: `${field} must be text` })
    .trim()
    .min(min, `${field} must be at least ${min} characters`)
    .max(max, `${field} must be at most ${max} characters`)
    .refine((v) => !hasControl(v), `${field} must be one line of text without control characters`);
