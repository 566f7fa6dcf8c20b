import type { SymbolicTensor } from '../graph/graph.js';
import type { TensorLike } from '../graph/op.js';
import { applyBinary, defineBinaryOp } from './elementwise.js';
import { mul } from './mul.js';
import { neg } from './neg.js';

/** The `div` op: `a / b`. Gradient: dy/b and -dy*y/b. */
export const divOp = defineBinaryOp({
  name: 'div',
  onnx: 'Div',
  kernel: (a, b) => a / b,
  gradient: (dy, _a, b, y, needs) => [needs[0] ? div(dy, b) : undefined, needs[1] ? neg(div(mul(dy, y), b)) : undefined],
});

/**
 * Elementwise `a / b` with NumPy broadcasting.
 *
 * @throws {@link ShapeError} when the shapes do not broadcast
 * @public
 */
export function div(a: TensorLike, b: TensorLike): SymbolicTensor {
  return applyBinary(divOp, a, b);
}
