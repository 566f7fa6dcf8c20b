import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { mul } from './mul.js';
import { sub } from './sub.js';
/** The `sigmoid` op. Gradient: dy*y*(1-y). */
export const sigmoidOp = defineUnaryOp({
  name: 'sigmoid',
  onnx: 'Sigmoid',
  kernel: (x) => 1 / (1 + Math.exp(-x)),
  gradient: (dy, _x, y) => mul(dy, mul(y, sub(1, y))),
});

/**
 * Elementwise logistic sigmoid `1 / (1 + e^-x)`.
 *
 * @param x - a float tensor
 * @public
 */
export function sigmoid(x: SymbolicTensor): SymbolicTensor {
  return sigmoidOp.apply([x], {})[0]!;
}
