import type { SymbolicTensor } from '../graph/graph.js';
import type { TensorLike } from '../graph/op.js';
import { applyBinary, defineBinaryOp } from './elementwise.js';

/** The `add` op: `a + b` with broadcasting. Gradient: dy to both (summed over broadcast axes). */
export const addOp = defineBinaryOp({
  name: 'add',
  onnx: 'Add',
  kernel: (a, b) => a + b,
  gradient: (dy) => [dy, dy],
});

/**
 * Elementwise `a + b` with NumPy broadcasting.
 *
 * @param a - first operand (a number becomes a constant of b's dtype)
 * @param b - second operand
 * @throws {@link ShapeError} when the shapes do not broadcast
 * @public
 */
export function add(a: TensorLike, b: TensorLike): SymbolicTensor {
  return applyBinary(addOp, a, b);
}
