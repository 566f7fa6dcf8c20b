import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { mul } from './mul.js';
import { sub } from './sub.js';
/** The `tanh` op. Gradient: dy*(1-y^2). */
export const tanhOp = defineUnaryOp({
  name: 'tanh',
  onnx: 'Tanh',
  kernel: Math.tanh,
  gradient: (dy, _x, y) => mul(dy, sub(1, mul(y, y))),
});

/**
 * Elementwise hyperbolic tangent.
 *
 * @param x - a float tensor
 * @public
 */
export function tanh(x: SymbolicTensor): SymbolicTensor {
  return tanhOp.apply([x], {})[0]!;
}
