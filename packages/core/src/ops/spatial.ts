import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim } from '../graph/dim.js';
import type { TensorInfo } from '../graph/graph.js';
import { expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { expectRank } from '../graph/shape.js';

/** Validates an NCHW float input with static H and W and returns [H, W]. */
export function spatialSize(opName: string, x: TensorInfo): [number, number] {
  expectDtype(opName, 'x', x, FLOAT_TYPES);
  expectRank(opName, 'x', x.shape, 4);
  const [h, w] = [x.shape[2]!, x.shape[3]!];
  if (!isStaticDim(h) || !isStaticDim(w)) throw new ShapeError(`${opName}: expected static spatial sizes; found x ${formatShape(x.shape)}`);
  return [h, w];
}

/** Validates a requested output size. */
export function expectOutputSize(opName: string, size: readonly number[]): [number, number] {
  if (size.length !== 2 || size.some((s) => !Number.isSafeInteger(s) || s <= 0)) {
    throw new ShapeError(`${opName}: expected an output size of two positive integers; found [${size.join(', ')}]`);
  }
  return [size[0]!, size[1]!];
}
