/** "Now" as a dependency, so services and activities can be tested with events placed in the past. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
