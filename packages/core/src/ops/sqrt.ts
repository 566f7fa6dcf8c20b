import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { div } from './div.js';
import { mul } from './mul.js';
/** The `sqrt` op. Gradient: dy/(2y). */
export const sqrtOp = defineUnaryOp({
  name: 'sqrt',
  onnx: 'Sqrt',
  kernel: Math.sqrt,
  gradient: (dy, _x, y) => div(dy, mul(y, 2)),
});

/**
 * Elementwise square root.
 *
 * @param x - a float tensor
 * @public
 */
export function sqrt(x: SymbolicTensor): SymbolicTensor {
  return sqrtOp.apply([x], {})[0]!;
}
