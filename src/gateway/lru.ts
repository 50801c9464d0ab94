/**
 * A Map bounded to `max` entries that evicts the least recently used one when
 * full. Caches on the hot path used to be cleared whole when they filled up,
 * so a flood of junk keys threw out every good entry at once; with eviction
 * by use, entries in steady use stay and the junk pushes out only itself.
 * A Map iterates in insertion order, so re-inserting on use keeps the least
 * recently used entry first.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error('LruMap needs a positive whole size');
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, marked as just used. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  /** The value, without marking it used. */
  peek(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): void {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as K);
    this.map.set(key, value);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }
}
