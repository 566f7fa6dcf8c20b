import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { erf as erfKernel } from '../reference/kernel-utils.js';
import { exp } from './exp.js';
import { mul } from './mul.js';
import { neg } from './neg.js';
/** The `erf` op. Gradient: dy*2/sqrt(pi)*exp(-x^2). */
export const erfOp = defineUnaryOp({
  name: 'erf',
  onnx: 'Erf',
  kernel: erfKernel,
  gradient: (dy, x) => mul(dy, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI))),
});

/**
 * Elementwise error function.
 *
 * @param x - a float tensor
 * @public
 */
export function erf(x: SymbolicTensor): SymbolicTensor {
  return erfOp.apply([x], {})[0]!;
}
