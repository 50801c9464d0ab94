import type { RequestHandler } from 'express';
import { hashSecret, looksLike } from '../auth/secrets';
import type { Db } from '../db/knex';
import { staffTokensRepo, type StaffRole } from '../staff/staff.data';
import { ForbiddenError, UnauthorizedError } from '../errors';

export interface StaffPrincipal {
  tokenId: string;
  role: StaffRole;
}

/**
 * Bearer staff tokens, looked up by hash on every request: staff traffic is
 * light, and an uncached lookup makes revocation immediate.
 */
export function requireRoles(db: Db, roles: readonly StaffRole[]): RequestHandler {
  const tokens = staffTokensRepo(db);
  return async (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match || !looksLike(match[1]!, 'staff_token')) {
      throw new UnauthorizedError('a staff token is required: Authorization: Bearer <token>');
    }
    const token = await tokens.findActiveByHash(hashSecret(match[1]!));
    if (!token) throw new UnauthorizedError('the staff token is unknown or revoked');
    if (!roles.includes(token.role)) {
      throw new ForbiddenError(`this route needs one of the roles ${roles.join(', ')}; the token has role ${token.role}`);
    }
    res.locals.staff = { tokenId: token.id, role: token.role } satisfies StaffPrincipal;
    next();
  };
}
