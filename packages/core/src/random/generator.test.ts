import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { RandomGenerator } from './generator.js';

// An independent implementation of the documented derivations in BigInt arithmetic (no Math.imul, no >>> tricks).
const MASK = 0xffffffffn;
const mul = (a: bigint, b: bigint): bigint => (a * b) & MASK;
const rotl = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & MASK;
function fmix(value: bigint): bigint {
  let h = value & MASK;
  h ^= h >> 16n;
  h = mul(h, 0x85ebca6bn);
  h ^= h >> 13n;
  h = mul(h, 0xc2b2ae35n);
  return h ^ (h >> 16n);
}
/** xoshiro128** (Blackman and Vigna's reference code) from a state, after `discard` outputs. */
function xoshiro(state: bigint[], discard: number, count: number): number[] {
  let [s0, s1, s2, s3] = state as [bigint, bigint, bigint, bigint];
  const out: number[] = [];
  for (let i = 0; i < discard + count; i++) {
    const result = mul(rotl(mul(s1, 5n), 7n), 9n);
    const t = (s1 << 9n) & MASK;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11n);
    if (i >= discard) out.push(Number(result));
  }
  return out;
}
function pairStream(seed: number, stream: number, count: number): number[] {
  const s0 = fmix(BigInt(seed));
  const s1 = fmix(BigInt(stream) ^ 0x9e3779b9n);
  const s2 = fmix(BigInt(seed) ^ 0x7f4a7c15n);
  return xoshiro([s0, s1, s2, fmix(s0 ^ s1 ^ s2 ^ 0x2545f491n)], 16, count);
}
function tupleStream(keys: number[], count: number): number[] {
  const state = [0x9e3779b9n, 0x85ebca77n, 0xc2b2ae3dn, 0x27d4eb2fn].map((lane, laneIndex) => {
    let h = lane;
    for (const key of keys.map(BigInt)) {
      h = fmix(((h ^ key) + BigInt(laneIndex + 1) * 0x632be5abn) & MASK);
      h = fmix(h ^ rotl(key, BigInt(7 + laneIndex * 5)));
    }
    return fmix(h ^ BigInt(keys.length));
  });
  return xoshiro(state, 8, count);
}
const draws = (generator: RandomGenerator, count: number): number[] => Array.from({ length: count }, () => generator.nextUint32());

describe('RandomGenerator', () => {
  it('a seed and at most one stream key fill the state directly, as documented', () => {
    for (const [seed, stream] of [
      [0, 0],
      [42, 0],
      [7, 3],
      [0xffffffff, 0x12345678],
    ] as const) {
      expect(draws(new RandomGenerator(seed, stream), 6)).toEqual(pairStream(seed, stream, 6));
    }
    expect(draws(new RandomGenerator(9), 6)).toEqual(pairStream(9, 0, 6));
  });

  it('three or more keys are hashed lane by lane, as documented', () => {
    for (const keys of [
      [1, 2, 3],
      [0, 0x5348_5546, 4],
      [5, 6, 7, 8, 9],
    ]) {
      const [seed, ...streams] = keys as [number, ...number[]];
      expect(draws(new RandomGenerator(seed, ...streams), 6)).toEqual(tupleStream(keys, 6));
    }
  });

  it('distinct key tuples give distinct streams; equal tuples the same', () => {
    const tuples = [[1], [1, 0], [1, 2], [1, 2, 3], [1, 2, 4], [1, 3, 2], [0, 2, 3], [1, 2, 3, 0], [2, 1, 3]];
    const streams = tuples.map(([seed, ...rest]) => draws(new RandomGenerator(seed!, ...rest), 4).join(','));
    // [1] and [1, 0] are the same stream (stream 0 is the default); every other tuple differs.
    expect(streams[0]).toBe(streams[1]);
    expect(new Set(streams).size).toBe(tuples.length - 1);
    expect(draws(new RandomGenerator(1, 2, 3), 8)).toEqual(draws(new RandomGenerator(1, 2, 3), 8));
  });

  it('integer covers [0, bound) evenly (chi-square over 20,000 draws), uniform stays in [0, 1), and normal has mean 0 and variance 1', () => {
    const generator = new RandomGenerator(42, 1, 2);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 20_000; i++) counts[generator.integer(10)]!++;
    const chiSquare = counts.reduce((sum, count) => sum + (count - 2000) ** 2 / 2000, 0);
    expect(chiSquare).toBeLessThan(27.9); // p = 0.001 for 9 degrees of freedom
    for (let i = 0; i < 1000; i++) {
      const value = generator.uniform();
      expect(value >= 0 && value < 1).toBe(true);
    }
    expect(generator.integer(1)).toBe(0);
    expect(generator.integer(2 ** 32)).toBeLessThan(2 ** 32);
    const normals = new RandomGenerator(3).fillNormal(new Float64Array(40_000));
    const mean = normals.reduce((a, b) => a + b, 0) / normals.length;
    const variance = normals.reduce((a, b) => a + (b - mean) ** 2, 0) / normals.length;
    // Standard errors: 0.005 for the mean, 0.007 for the variance.
    expect(Math.abs(mean)).toBeLessThan(0.025);
    expect(Math.abs(variance - 1)).toBeLessThan(0.035);
  });

  it('fillNormal gives the values of as many normal() calls, by Box-Muller from two uniforms', () => {
    const single = new RandomGenerator(5, 6, 7);
    const one = Array.from({ length: 5 }, () => single.normal());
    expect([...new RandomGenerator(5, 6, 7).fillNormal(new Float64Array(5))]).toEqual(one);
    const uniforms = new RandomGenerator(5, 6, 7);
    const u1 = uniforms.uniform();
    const u2 = uniforms.uniform();
    expect(one[0]).toBeCloseTo(Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2), 14);
    expect(one[1]).toBeCloseTo(Math.sqrt(-2 * Math.log(1 - u1)) * Math.sin(2 * Math.PI * u2), 14);
  });

  it('shuffle permutes arrays and typed arrays by Fisher-Yates from the top', () => {
    const values = Int32Array.from({ length: 50 }, (_, i) => i);
    new RandomGenerator(7, 1, 2).shuffle(values);
    expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect([...values]).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    // By hand: swap i with integer(i + 1) for i = n-1 down to 1.
    const picks = new RandomGenerator(8);
    const expected = ['a', 'b', 'c', 'd'];
    for (let i = 3; i > 0; i--) {
      const j = picks.integer(i + 1);
      [expected[i], expected[j]] = [expected[j]!, expected[i]!];
    }
    expect(new RandomGenerator(8).shuffle(['a', 'b', 'c', 'd'])).toEqual(expected);
  });

  it('rejects keys and bounds outside their ranges with ConfigError', () => {
    expect(() => new RandomGenerator(-1)).toThrow(ConfigError);
    expect(() => new RandomGenerator(1.5)).toThrow(ConfigError);
    expect(() => new RandomGenerator(2 ** 32)).toThrow(ConfigError);
    expect(() => new RandomGenerator(0, 1, -2)).toThrow(/stream must be an integer/);
    expect(() => new RandomGenerator(0).integer(0)).toThrow(ConfigError);
    expect(() => new RandomGenerator(0).integer(2 ** 32 + 1)).toThrow(ConfigError);
  });
});
