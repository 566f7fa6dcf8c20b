import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { add } from './add.js';
import { mul } from './mul.js';
import { sigmoid } from './sigmoid.js';
import { sub } from './sub.js';
/** The `silu` op. Gradient: dy*(s + x*s*(1-s)), s = sigmoid(x). */
export const siluOp = defineUnaryOp({
  name: 'silu',
  onnx: (context, [x]) => context.emit('Mul', [x!, context.emit('Sigmoid', [x!])[0]!])[0]!,
  kernel: (x) => x / (1 + Math.exp(-x)),
  gradient: (dy, x) => {
    const s = sigmoid(x);
    return mul(dy, add(s, mul(x, mul(s, sub(1, s)))));
  },
});

/**
 * Elementwise SiLU (swish) `x * sigmoid(x)`.
 *
 * @param x - a float tensor
 * @public
 */
export function silu(x: SymbolicTensor): SymbolicTensor {
  return siluOp.apply([x], {})[0]!;
}
