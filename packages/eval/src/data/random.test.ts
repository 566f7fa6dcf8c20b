import { ConfigError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from './random.js';

function draws(random: SeededRandom, count: number): number[] {
  return Array.from({ length: count }, () => random.nextUint32());
}

describe('SeededRandom', () => {
  it('gives the same stream for the same keys and different streams for different keys', () => {
    expect(draws(new SeededRandom(1, 2, 3), 8)).toEqual(draws(new SeededRandom(1, 2, 3), 8));
    const streams = [[1, 2, 3], [1, 2, 4], [1, 3, 2], [0, 2, 3], [1, 2], [1, 2, 3, 0]].map((keys) => draws(new SeededRandom(...keys), 4).join(','));
    expect(new Set(streams).size).toBe(streams.length);
  });

  it('nextInt covers [0, bound) evenly (chi-square over 20,000 draws) and nextFloat stays in [0, 1)', () => {
    const random = new SeededRandom(42);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 20_000; i++) counts[random.nextInt(10)]!++;
    const chiSquare = counts.reduce((sum, count) => sum + (count - 2000) ** 2 / 2000, 0);
    expect(chiSquare).toBeLessThan(27.9); // p = 0.001 for 9 degrees of freedom
    for (let i = 0; i < 1000; i++) {
      const value = random.nextFloat();
      expect(value >= 0 && value < 1).toBe(true);
    }
    expect(random.nextInt(1)).toBe(0);
  });

  it('shuffle returns a permutation', () => {
    const values = Int32Array.from({ length: 50 }, (_, i) => i);
    new SeededRandom(7).shuffle(values);
    expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect([...values]).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('rejects keys and bounds that are not uint32 with ConfigError', () => {
    expect(() => new SeededRandom(-1)).toThrow(ConfigError);
    expect(() => new SeededRandom(1.5)).toThrow(ConfigError);
    expect(() => new SeededRandom(2 ** 32)).toThrow(ConfigError);
    expect(() => new SeededRandom(0).nextInt(0)).toThrow(ConfigError);
  });
});
