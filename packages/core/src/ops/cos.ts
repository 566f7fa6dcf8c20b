import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { mul } from './mul.js';
import { neg } from './neg.js';
import { sin } from './sin.js';
/** The `cos` op. Gradient: -dy*sin(x). */
export const cosOp = defineUnaryOp({
  name: 'cos',
  onnx: 'Cos',
  kernel: Math.cos,
  gradient: (dy, x) => neg(mul(dy, sin(x))),
});

/**
 * Elementwise cosine.
 *
 * @param x - a float tensor
 * @public
 */
export function cos(x: SymbolicTensor): SymbolicTensor {
  return cosOp.apply([x], {})[0]!;
}
