import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { cos } from './cos.js';
import { mul } from './mul.js';
/** The `sin` op. Gradient: dy*cos(x). */
export const sinOp = defineUnaryOp({
  name: 'sin',
  onnx: 'Sin',
  kernel: Math.sin,
  gradient: (dy, x) => mul(dy, cos(x)),
});

/**
 * Elementwise sine.
 *
 * @param x - a float tensor
 * @public
 */
export function sin(x: SymbolicTensor): SymbolicTensor {
  return sinOp.apply([x], {})[0]!;
}
