import type { SymbolicTensor } from '../graph/graph.js';
import type { TensorLike } from '../graph/op.js';
import { applyBinary, defineBinaryOp } from './elementwise.js';
import { log } from './log.js';
import { mul } from './mul.js';
import { sub } from './sub.js';

/** The `pow` op: `a ** b`. Gradient: dy*b*a^(b-1) and dy*y*log(a). */
export const powOp = defineBinaryOp({
  name: 'pow',
  onnx: 'Pow',
  kernel: (a, b) => a ** b,
  gradient: (dy, a, b, y, needs) => [needs[0] ? mul(dy, mul(b, pow(a, sub(b, 1)))) : undefined, needs[1] ? mul(dy, mul(y, log(a))) : undefined],
});

/**
 * Elementwise `a ** b` with NumPy broadcasting.
 *
 * @throws {@link ShapeError} when the shapes do not broadcast
 * @public
 */
export function pow(a: TensorLike, b: TensorLike): SymbolicTensor {
  return applyBinary(powOp, a, b);
}
