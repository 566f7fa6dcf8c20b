import { compileModel, createRunner, HostTensor, RandomGenerator, type SymbolicTensor } from '@diffssl/core';
import { expect } from 'vitest';

/** Deterministic uniform [0, 1) draws: `uniform()` of core's `RandomGenerator(seed)`. */
export function seededRandom(seed: number): () => number {
  const generator = new RandomGenerator(seed);
  return () => generator.uniform();
}

/** A float32 tensor of uniform values in [low, high). */
export function randomTensor(shape: readonly number[], seed: number, low = -1, high = 1): HostTensor<'float32'> {
  const random = seededRandom(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return HostTensor.from(
    'float32',
    shape,
    Array.from({ length: size }, () => low + (high - low) * random()),
  );
}

/**
 * max |a - b| / max(minimumScale, max |b|): with the default 1, the fixtures'
 * tolerance measure; with 0, the error relative to the expected tensor's own
 * scale, however small (a zero scale gives 0 for equal tensors, else Infinity).
 * NaN anywhere counts as infinitely far.
 */
export function relativeError(actual: HostTensor, expected: HostTensor, minimumScale = 1): number {
  expect(actual.shape).toEqual(expected.shape);
  return scaledMaxError(actual, expected, minimumScale);
}

/**
 * {@link relativeError} for code outside a test (benchmarks, checks that
 * print rather than assert): Infinity for tensors of different shapes
 * instead of a failed expectation.
 */
export function scaledMaxError(actual: HostTensor, expected: HostTensor, minimumScale = 1): number {
  if (actual.shape.join() !== expected.shape.join()) return Infinity;
  const a = actual.toArray();
  const b = expected.toArray();
  let worst = 0;
  let scale = minimumScale;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    const difference = Math.abs(a[i]! - b[i]!);
    if (!(difference <= worst)) worst = Number.isNaN(difference) ? Infinity : difference;
  }
  return scale === 0 ? (worst === 0 ? 0 : Infinity) : worst / scale;
}

/** Asserts agreement within `tolerance` relative to max(1, max |expected|). */
export function expectClose(actual: HostTensor, expected: HostTensor, tolerance = 1e-4, label = ''): void {
  const error = relativeError(actual, expected);
  expect(error, `${label} relative error ${error} > ${tolerance}`).toBeLessThanOrEqual(tolerance);
}

/** Compiles and runs tensors on ONNX Runtime's CPU provider, feeding only the inputs the model takes. */
export async function runOnnx(outputs: Record<string, SymbolicTensor>, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const model = compileModel({ outputs });
  const runner = await createRunner(model, { executionProviders: ['cpu'] });
  try {
    return await runner.run(Object.fromEntries(model.inputs.map((input) => [input.name, feeds[input.name]!])));
  } finally {
    await runner.release();
  }
}
