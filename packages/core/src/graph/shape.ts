import { ShapeError } from '../errors.js';
import { dimsEqual, formatShape, type Dim } from './dim.js';

/**
 * NumPy broadcasting of two symbolic shapes.
 *
 * @throws {@link ShapeError} naming the op and both shapes when they do not broadcast
 */
export function broadcastShapes(opName: string, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<Dim>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === 1) out[i] = db;
    else if (db === 1 || dimsEqual(da, db)) out[i] = da;
    else throw new ShapeError(`${opName}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (axis ${i} of the result: ${da} vs ${db})`);
  }
  return out;
}

/**
 * Resolves a possibly negative axis.
 *
 * @throws {@link ShapeError} when it is out of range
 */
export function normalizeAxis(opName: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new ShapeError(`${opName}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Checks the rank of an argument. */
export function expectRank(opName: string, argument: string, shape: readonly Dim[], rank: number | readonly number[]): void {
  const allowed = typeof rank === 'number' ? [rank] : rank;
  if (!allowed.includes(shape.length)) {
    throw new ShapeError(`${opName}: expected ${argument} of rank ${allowed.join(' or ')}; found shape ${formatShape(shape)}`);
  }
}

/** Checks a positive integer parameter. */
export function expectPositiveInteger(opName: string, argument: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ShapeError(`${opName}: expected ${argument} to be a positive integer; found ${String(value)}`);
  }
}

/** A pair from a number or a pair. */
export function pair(value: number | readonly [number, number]): [number, number] {
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}
