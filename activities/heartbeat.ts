import { Context } from '@temporalio/activity';

/**
 * Runs an activity's work while heartbeating, so Temporal tells a dead worker
 * (retried within the workflow's heartbeatTimeout) from a slow statement (left
 * alone). Beats come from a timer every `everyMs`, which covers a long
 * statement, and from `beat`, which the work hands to its service as
 * `onProgress` to call between steps. Keep `everyMs` well under the
 * heartbeatTimeout the workflow gives the activity.
 *
 * A local activity has no heartbeat: its workflow task timing out plays that
 * part, so there nothing is sent and `beat` does nothing.
 *
 * `details` is sent with every beat; a retry reads the last one back from
 * `Context.current().info.heartbeatDetails` to resume where the dead attempt
 * stopped.
 */
export async function withHeartbeat<T>(
  opts: { everyMs: number; details?: () => unknown; beatAtStart?: boolean },
  work: (beat: () => void) => Promise<T>,
): Promise<T> {
  const ctx = Context.current();
  if (ctx.info.isLocal) return work(() => undefined);
  const beat = opts.details ? () => ctx.heartbeat(opts.details!()) : () => ctx.heartbeat();
  const timer = setInterval(beat, opts.everyMs);
  try {
    if (opts.beatAtStart) beat();
    return await work(beat);
  } finally {
    clearInterval(timer);
  }
}

/** The details the last attempt's heartbeat carried (see withHeartbeat), or undefined on a first attempt. */
export function lastHeartbeatDetails<T>(): T | undefined {
  return Context.current().info.heartbeatDetails as T | undefined;
}
