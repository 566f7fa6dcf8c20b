import type { SymbolicTensor } from '../graph/graph.js';
import type { TensorLike } from '../graph/op.js';
import { applyBinary, defineBinaryOp } from './elementwise.js';

/** The `mul` op: `a * b`. Gradient: dy*b and dy*a. */
export const mulOp = defineBinaryOp({
  name: 'mul',
  onnx: 'Mul',
  kernel: (a, b) => a * b,
  gradient: (dy, a, b, _y, needs) => [needs[0] ? mul(dy, b) : undefined, needs[1] ? mul(dy, a) : undefined],
});

/**
 * Elementwise `a * b` with NumPy broadcasting.
 *
 * @throws {@link ShapeError} when the shapes do not broadcast
 * @public
 */
export function mul(a: TensorLike, b: TensorLike): SymbolicTensor {
  return applyBinary(mulOp, a, b);
}
