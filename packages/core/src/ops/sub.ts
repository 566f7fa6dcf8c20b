import type { SymbolicTensor } from '../graph/graph.js';
import type { TensorLike } from '../graph/op.js';
import { applyBinary, defineBinaryOp } from './elementwise.js';
import { neg } from './neg.js';

/** The `sub` op: `a - b`. Gradient: dy and -dy. */
export const subOp = defineBinaryOp({
  name: 'sub',
  onnx: 'Sub',
  kernel: (a, b) => a - b,
  gradient: (dy, _a, _b, _y, needs) => [dy, needs[1] ? neg(dy) : undefined],
});

/**
 * Elementwise `a - b` with NumPy broadcasting.
 *
 * @throws {@link ShapeError} when the shapes do not broadcast
 * @public
 */
export function sub(a: TensorLike, b: TensorLike): SymbolicTensor {
  return applyBinary(subOp, a, b);
}
