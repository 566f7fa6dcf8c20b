import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { div } from './div.js';
/** The `log` op. Gradient: dy/x. */
export const logOp = defineUnaryOp({
  name: 'log',
  onnx: 'Log',
  kernel: Math.log,
  gradient: (dy, x) => div(dy, x),
});

/**
 * Elementwise natural logarithm.
 *
 * @param x - a float tensor
 * @public
 */
export function log(x: SymbolicTensor): SymbolicTensor {
  return logOp.apply([x], {})[0]!;
}
