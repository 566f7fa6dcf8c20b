import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { cast } from './cast.js';
import { greater } from './greater.js';
import { mul } from './mul.js';
/** The `relu` op. Gradient: dy where x > 0, else 0. */
export const reluOp = defineUnaryOp({
  name: 'relu',
  onnx: 'Relu',
  kernel: (x) => (x > 0 ? x : 0),
  gradient: (dy, x) => mul(dy, cast(greater(x, 0), x.dtype)),
});

/**
 * Elementwise `max(x, 0)`.
 *
 * @param x - a float tensor
 * @public
 */
export function relu(x: SymbolicTensor): SymbolicTensor {
  return reluOp.apply([x], {})[0]!;
}
