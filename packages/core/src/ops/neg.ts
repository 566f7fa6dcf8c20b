import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';

/** The `neg` op. Gradient: -dy. */
export const negOp = defineUnaryOp({
  name: 'neg',
  onnx: 'Neg',
  kernel: (x) => -x,
  gradient: (dy) => neg(dy),
});

/**
 * Elementwise negation `-x`.
 *
 * @param x - a float tensor
 * @public
 */
export function neg(x: SymbolicTensor): SymbolicTensor {
  return negOp.apply([x], {})[0]!;
}
