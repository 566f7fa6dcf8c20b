import { RandomGenerator } from '@diffssl/core';

/** A generator from a seed (default 0) or a generator. @internal */
export function generatorFrom(seed: number | RandomGenerator | undefined): RandomGenerator {
  return seed instanceof RandomGenerator ? seed : new RandomGenerator(seed ?? 0);
}
