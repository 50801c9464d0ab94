/**
 * How hard usage expiry may lean on the disk. Dropping a day partition frees
 * a few hundred MB at its commit; on storage that discards freed blocks
 * synchronously (ext4 mounted with `discard` on a virtual disk here) every
 * fsync on the volume waits meanwhile. Since the metering batcher commits
 * asynchronously (src/metering/batcher.ts) its inserts no longer wait for
 * those fsyncs, and the pause only spaces the drops and the slices of a
 * day's count. In the retention benchmark on the slower VM, with the
 * batcher's asynchronous commits: factor 2 kept the insert p99 at 1.15× its
 * baseline but took 99 s for 20 days; 0 took 18.7 s with two inserts slowed
 * past 2×; 0.5 took 29.3 s and 31.3 s (p99 1.11× and 1.00×); 0.3 took
 * 28.3 s (p99 1.52×), both targets met. The daily run drops one day, so the
 * pause costs it nothing that matters; a catch-up of many days takes 1.3
 * times as long as without.
 */
export const DEFAULT_PAUSE_FACTOR = 0.3;
