/**
 * How hard usage expiry may lean on the disk. Dropping a day partition frees
 * a few hundred MB at its commit; on storage that discards freed blocks
 * synchronously (ext4 mounted with `discard` on a virtual disk here) fsyncs
 * on the volume, the metering batcher's WAL flushes included, wait while
 * those blocks are discarded. Back to back, 20 days of drops kept the disk
 * busy for seconds and slowed 23 % of the batcher's inserts in the retention
 * benchmark; with a pause after each day of twice the time the day took
 * (expiry works at most a third of its run time), 6 % were slowed and the
 * median insert kept its baseline. The daily run drops one day, so the pause
 * costs it under a second; a catch-up of many days takes three times as long.
 */
export const DEFAULT_PAUSE_FACTOR = 2;
