import type { Db } from '../db/knex';
import { STAFF_ROLES, type StaffRole } from '../staff/staff.data';
import { ConflictError, NotFoundError, ValidationError } from '../errors';

/**
 * Changing a staff member's access from the console. Sessions re-read the
 * user on every request, so a new role applies at once; disabling also ends
 * the user's sessions in the same transaction. An admin cannot change or
 * disable their own access: another admin must, so the console is never left
 * without one by a slip.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkTarget(id: string, actor: string) {
  if (!UUID.test(id)) throw new NotFoundError(`staff member ${id} does not exist`);
  if (actor === `staff-user:${id}`) throw new ConflictError('you cannot change your own access; ask another admin');
}

export async function setStaffUserRole(db: Db, id: string, role: string, actor: string): Promise<void> {
  checkTarget(id, actor);
  if (!STAFF_ROLES.includes(role as StaffRole)) throw new ValidationError('role must be billing, compliance or admin');
  const n = await db('staff_users').where({ id }).update({ role });
  if (!n) throw new NotFoundError(`staff member ${id} does not exist`);
}

export async function disableStaffUser(db: Db, id: string, actor: string): Promise<void> {
  checkTarget(id, actor);
  await db.transaction(async (trx) => {
    const [u] = await trx('staff_users').where({ id }).update({ disabled_at: trx.raw('coalesce(disabled_at, now())') }).returning('id');
    if (!u) throw new NotFoundError(`staff member ${id} does not exist`);
    await trx('console_sessions').where({ staff_user_id: id }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
  });
}
