import { ConfigError, fmix32, xoshiro128 } from '@diffssl/core';

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const LANE_CONSTANTS = [0x9e3779b9, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f] as const;

/**
 * A small seeded random generator (xoshiro128**) whose stream is a pure
 * function of a tuple of uint32 keys, e.g. `(seed, purpose, epoch, index)`.
 * The four state words hash the whole tuple independently, so distinct tuples
 * give unrelated streams; nothing depends on call order elsewhere, which is
 * what makes shuffles and augmentations independent of batch size and
 * resumable mid-epoch.
 *
 * @example
 * ```ts
 * const random = new SeededRandom(0, 7);
 * random.nextInt(10); // the same value for the same keys, always
 * ```
 * @public
 */
export class SeededRandom {
  private readonly next: () => number;

  /**
   * @param keys - uint32 values that select the stream
   * @throws `ConfigError` when a key is not an integer in [0, 2^32)
   */
  constructor(...keys: number[]) {
    const state = LANE_CONSTANTS.map((lane, laneIndex) => {
      let h: number = lane;
      for (const key of keys) {
        if (!Number.isInteger(key) || key < 0 || key > 0xffffffff) throw new ConfigError(`SeededRandom: keys must be integers in [0, 2^32); found ${key}`);
        h = fmix32((h ^ key) + Math.imul(laneIndex + 1, 0x632be5ab));
        h = fmix32(h ^ rotl(key, 7 + laneIndex * 5));
      }
      return fmix32(h ^ keys.length);
    });
    this.next = xoshiro128(state as [number, number, number, number], 8);
  }

  /** The next uniform integer in [0, 2^32). */
  nextUint32(): number {
    return this.next();
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number {
    return ((this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6)) / 9007199254740992;
  }

  /**
   * A uniform integer in [0, bound), without modulo bias (rejection).
   *
   * @param bound - exclusive upper bound, 1..2^32
   * @throws `ConfigError` for a bound outside 1..2^32
   */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 0x100000000) throw new ConfigError(`SeededRandom.nextInt: bound must be an integer in 1..2^32; found ${bound}`);
    const limit = 0x100000000 - (0x100000000 % bound);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % bound;
    }
  }

  /** Shuffles an array in place (Fisher-Yates) and returns it. */
  shuffle<
    T extends {
      /** Number of elements. */
      length: number;
      [index: number]: unknown;
    },
  >(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const swap = array[i];
      array[i] = array[j];
      array[j] = swap;
    }
    return array;
  }
}
