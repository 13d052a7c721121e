import { LruMap } from './lru-map';

describe('LruMap', () => {
  it('never holds more than its capacity, forgetting the least recently used key', () => {
    const map = new LruMap<string, number>(3);
    for (let i = 0; i < 10; i += 1) map.set(`k${i}`, i);
    expect(map.size).toBe(3);
    expect([...map].map(([key]) => key)).toEqual(['k7', 'k8', 'k9']);
  });

  it('counts a get as a use, so a key read often survives', () => {
    const map = new LruMap<string, number>(2);
    map.set('hot', 1);
    map.set('a', 2);
    expect(map.get('hot')).toBe(1);
    map.set('b', 3);
    expect(map.has('hot')).toBe(true);
    expect(map.has('a')).toBe(false);
  });

  it('does not count a peek, a miss or an overwrite as growth', () => {
    const map = new LruMap<string, number>(2);
    map.set('old', 1);
    map.set('new', 2);
    expect(map.peek('old')).toBe(1);
    expect(map.get('missing')).toBeUndefined();
    map.set('new', 3);
    expect(map.size).toBe(2);
    map.set('third', 4);
    expect(map.has('old')).toBe(false);
    expect(map.get('new')).toBe(3);
  });

  it('forgets on delete and clear', () => {
    const map = new LruMap<string, number>(2);
    map.set('a', 1);
    map.set('b', 2);
    expect(map.delete('a')).toBe(true);
    expect(map.delete('a')).toBe(false);
    map.clear();
    expect(map.size).toBe(0);
  });

  it('refuses a capacity that could not hold anything', () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
    expect(() => new LruMap(1.5)).toThrow(RangeError);
  });
});
