import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../src/util/bounded-cache.js';

describe('BoundedCache', () => {
  it('keeps at most its limit, dropping the least recently used; a get is a use', () => {
    const cache = new BoundedCache<string, number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.get('a')).toBe(1);
    cache.set('d', 4);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
  });

  it('replaces the value of a key it holds without growing', () => {
    const cache = new BoundedCache<string, number>(2);
    cache.set('a', 1);
    cache.set('a', 2);
    cache.set('b', 3);
    expect(cache.size).toBe(2);
    expect(cache.get('a')).toBe(2);
    expect(cache.delete('a')).toBe(true);
    expect(cache.get('a')).toBeUndefined();
  });

  it('getOrSet makes a value only for a key it does not hold, and keeps it', () => {
    const cache = new BoundedCache<string, number>(2);
    let made = 0;
    const make = () => ++made * 10;
    expect(cache.getOrSet('a', make)).toBe(10);
    expect(cache.getOrSet('a', make)).toBe(10);
    expect(made).toBe(1);
    cache.getOrSet('b', make);
    cache.getOrSet('c', make);
    expect(cache.getOrSet('a', make)).toBe(40);
    expect(made).toBe(4);
  });

  it('refuses a limit below one', () => {
    expect(() => new BoundedCache(0)).toThrow(RangeError);
    expect(() => new BoundedCache(1.5)).toThrow(RangeError);
  });
});
