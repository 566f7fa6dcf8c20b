import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { erf as erfKernel } from '../reference/kernel-utils.js';
import { add } from './add.js';
import { erf } from './erf.js';
import { exp } from './exp.js';
import { mul } from './mul.js';
import { scalarLike } from './scalar-like.js';
/** The `gelu` op. Gradient: dy*(Phi(x) + x*phi(x)). */
export const geluOp = defineUnaryOp({
  name: 'gelu',
  onnx: (context, [x]) => {
    // 0.5 * x * (1 + erf(x / sqrt(2))), the exact (erf) GELU; opset 18 has no Gelu.
    const scaled = context.emit('Mul', [x!, context.constant(scalarLike(context, Math.SQRT1_2))])[0]!;
    const onePlusErf = context.emit('Add', [context.emit('Erf', [scaled])[0]!, context.constant(scalarLike(context, 1))])[0]!;
    const half = context.emit('Mul', [x!, context.constant(scalarLike(context, 0.5))])[0]!;
    return context.emit('Mul', [half, onePlusErf])[0]!;
  },
  kernel: (x) => 0.5 * x * (1 + erfKernel(x * Math.SQRT1_2)),
  gradient: (dy, x) => {
    const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return mul(dy, add(cdf, mul(x, pdf)));
  },
});

/**
 * Elementwise GELU with the exact erf form `0.5 x (1 + erf(x / sqrt 2))` (PyTorch's default `nn.GELU()`).
 *
 * @param x - a float tensor
 * @public
 */
export function gelu(x: SymbolicTensor): SymbolicTensor {
  return geluOp.apply([x], {})[0]!;
}
