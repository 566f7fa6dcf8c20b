import { ConfigError } from '../errors.js';

/**
 * MurmurHash3's 32-bit finalizer: a bijection on uint32 that mixes every bit
 * (used to turn seeds and keys into generator states).
 *
 * @param value - any integer (taken modulo 2^32)
 * @returns an integer in [0, 2^32)
 * @public
 */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * The xoshiro128** generator from four state words: a function returning the
 * next 32 random bits as an unsigned integer, after discarding `discard`
 * outputs. Every seeded stream of the project (initialization, data order,
 * augmentation, diffusion noise) draws from it; they differ only in how their
 * keys become the state.
 *
 * @param state - four uint32 words, not all zero (an all-zero state is replaced by [0, 0, 0, 1])
 * @param discard - outputs to skip first (default 0)
 * @public
 */
export function xoshiro128(state: readonly [number, number, number, number], discard = 0): () => number {
  let [s0, s1, s2, s3] = state.map((word) => word >>> 0) as [number, number, number, number];
  if ((s0 | s1 | s2 | s3) === 0) s3 = 1;
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = s1 << 9;
    s2 = (s2 ^ s0) >>> 0;
    s3 = (s3 ^ s1) >>> 0;
    s1 = (s1 ^ s2) >>> 0;
    s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    return result;
  };
  for (let i = 0; i < discard; i++) next();
  return next;
}

const LANE_CONSTANTS = [0x9e3779b9, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f] as const;

/** The four state words of a generator keyed by three or more words: each lane hashes the whole tuple. */
function tupleState(keys: readonly number[]): [number, number, number, number] {
  return LANE_CONSTANTS.map((lane, laneIndex) => {
    let h: number = lane;
    for (const key of keys) {
      h = fmix32((h ^ key) + Math.imul(laneIndex + 1, 0x632be5ab));
      h = fmix32(h ^ rotl(key, 7 + laneIndex * 5));
    }
    return fmix32(h ^ keys.length);
  }) as [number, number, number, number];
}

/**
 * A seeded pseudo-random generator (xoshiro128**) with uniform, integer and
 * Gaussian draws. The same keys give the same stream on every platform. The
 * one random generator family of the project: PyTorch-style parameter
 * initialization (the same distributions as PyTorch, not its random stream),
 * data order, augmentation, diffusion noise, and the web page's shuffles.
 *
 * A stream is selected by a seed and any number of further uint32 keys
 * (`new RandomGenerator(seed, purpose, epoch, index)`): a pure function of
 * them, so nothing depends on call order elsewhere. A seed with at most one
 * stream key fills the state directly (`fmix32(seed)`,
 * `fmix32(stream ^ 0x9e3779b9)`, `fmix32(seed ^ 0x7f4a7c15)` and `fmix32` of
 * their xor with 0x2545f491; fmix32 is a bijection, so distinct pairs give
 * distinct states), 16 outputs discarded. Three or more keys do not fit the
 * state one word each: each of the four state words hashes the whole tuple
 * with its own constant, so distinct tuples give unrelated streams (a
 * collision takes about 2^64 tuples), 8 outputs discarded.
 *
 * @example
 * ```ts
 * const generator = new RandomGenerator(42);
 * generator.uniform(); // in [0, 1)
 * generator.normal(); // standard normal
 * new RandomGenerator(42, 7, 3).integer(10); // the same value for the same keys, always
 * ```
 * @public
 */
export class RandomGenerator {
  private readonly next: () => number;
  private spareNormal: number | undefined;

  /**
   * @param seed - an integer in [0, 2^32)
   * @param streams - further integers in [0, 2^32) that select an independent stream for the same seed (none: stream 0)
   * @throws {@link ConfigError} for a seed or stream that is not such an integer
   */
  constructor(seed: number, ...streams: number[]) {
    for (const [name, value] of [['seed', seed], ...streams.map((stream) => ['stream', stream] as const)] as const) {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
        throw new ConfigError(`RandomGenerator: ${name} must be an integer in [0, 2^32); found ${value}`);
    }
    if (streams.length <= 1) {
      const s0 = fmix32(seed);
      const s1 = fmix32((streams[0] ?? 0) ^ 0x9e3779b9);
      const s2 = fmix32(seed ^ 0x7f4a7c15);
      this.next = xoshiro128([s0, s1, s2, fmix32(s0 ^ s1 ^ s2 ^ 0x2545f491)], 16);
    } else {
      this.next = xoshiro128(tupleState([seed, ...streams]), 8);
    }
  }

  /**
   * A generator from a seed, or the given generator itself (so callers that
   * accept either share one stream).
   *
   * @param seed - a seed in [0, 2^32) (default 0), or a generator to use as is
   * @returns `seed` when it is a generator; otherwise `new RandomGenerator(seed ?? 0)`
   * @throws {@link ConfigError} for a seed that is not an integer in [0, 2^32)
   */
  static from(seed?: number | RandomGenerator): RandomGenerator {
    return seed instanceof RandomGenerator ? seed : new RandomGenerator(seed ?? 0);
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    return this.next();
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    return ((this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6)) / 9007199254740992;
  }

  /**
   * A uniform integer in [0, bound), without modulo bias (32-bit draws,
   * rejecting the top partial range).
   *
   * @param bound - exclusive upper bound, an integer in 1..2^32
   * @throws {@link ConfigError} for another bound
   */
  integer(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 0x100000000)
      throw new ConfigError(`RandomGenerator.integer: bound must be an integer in 1..2^32; found ${bound}`);
    const limit = 0x100000000 - (0x100000000 % bound);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % bound;
    }
  }

  /** A standard normal draw (Box-Muller on 53-bit uniforms; the cosine value first, the sine value next). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const value = this.spareNormal;
      this.spareNormal = undefined;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /**
   * Fills an array with standard normal draws, the same values as as many
   * {@link RandomGenerator.normal} calls.
   *
   * @param out - the array to fill (e.g. a Float32Array of noise)
   * @returns `out`
   */
  fillNormal<T extends Float32Array | Float64Array>(out: T): T {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }

  /** Shuffles an array (or a typed array) in place (Fisher-Yates, from the last element down) and returns it. */
  shuffle<
    T extends {
      /** Number of elements. */
      length: number;
      [index: number]: unknown;
    },
  >(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.integer(i + 1);
      const swap = items[i];
      items[i] = items[j];
      items[j] = swap;
    }
    return items;
  }
}
