import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { mul } from './mul.js';
/** The `exp` op. Gradient: dy*y. */
export const expOp = defineUnaryOp({
  name: 'exp',
  onnx: 'Exp',
  kernel: Math.exp,
  gradient: (dy, _x, y) => mul(dy, y),
});

/**
 * Elementwise `e^x`.
 *
 * @param x - a float tensor
 * @public
 */
export function exp(x: SymbolicTensor): SymbolicTensor {
  return expOp.apply([x], {})[0]!;
}
