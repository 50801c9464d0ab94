import type { RequestHandler } from 'express';
import { looksLike } from '../auth/secrets';
import type { StaffRole } from '../staff/staff.rules';
import type { StaffService } from '../staff/staff.service';
import { ForbiddenError, UnauthorizedError } from '../errors';

export interface StaffPrincipal {
  tokenId: string;
  role: StaffRole;
}

/**
 * Bearer staff tokens, looked up by hash on every request: staff traffic is
 * light, and an uncached lookup makes revocation immediate.
 */
export function requireRoles(staff: Pick<StaffService, 'findActiveToken'>, roles: readonly StaffRole[]): RequestHandler {
  return async (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match || !looksLike(match[1]!, 'staff_token')) {
      throw new UnauthorizedError('a staff token is required: Authorization: Bearer <token>');
    }
    const token = await staff.findActiveToken(match[1]!);
    if (!token) throw new UnauthorizedError('the staff token is unknown or revoked');
    if (!roles.includes(token.role)) {
      throw new ForbiddenError(`this route needs one of the roles ${roles.join(', ')}; the token has role ${token.role}`);
    }
    res.locals.staff = { tokenId: token.id, role: token.role } satisfies StaffPrincipal;
    next();
  };
}
