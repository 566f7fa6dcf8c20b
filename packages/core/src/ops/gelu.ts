import type { SymbolicTensor } from '../graph/graph.js';
import { defineUnaryOp } from './elementwise.js';
import { erf as erfKernel } from '../reference/kernel-utils.js';
import { add } from './add.js';
import { div } from './div.js';
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
    const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return mul(dy, add(backwardNormalCdf(x), mul(x, pdf)));
  },
  // x * Phi(x): the backward pass keeps only x (which the gradient reads anyway), not the output.
  rematerialize: (x) => mul(x, backwardNormalCdf(x)),
});

/**
 * The standard normal CDF `0.5 (1 + erf(x / sqrt 2))` as the backward pass
 * computes it: dividing by sqrt 2 where the forward lowering multiplies by
 * 1/sqrt 2, so that ONNX Runtime does not merge the two (the merge would keep
 * the forward's erf alive until the backward pass, a tensor as large as the
 * output). The two differ by at most one rounding of the erf argument. Built
 * once per x, so the recomputed output and the gradient share it (ONNX
 * Runtime does not merge duplicates inside a Loop body).
 */
function backwardNormalCdf(x: SymbolicTensor): SymbolicTensor {
  let cdf = backwardCdfs.get(x);
  if (!cdf) {
    cdf = mul(add(erf(div(x, Math.SQRT2)), 1), 0.5);
    backwardCdfs.set(x, cdf);
  }
  return cdf;
}

const backwardCdfs = new WeakMap<SymbolicTensor, SymbolicTensor>();

/**
 * Elementwise GELU with the exact erf form `0.5 x (1 + erf(x / sqrt 2))` (PyTorch's default `nn.GELU()`).
 *
 * @param x - a float tensor
 * @public
 */
export function gelu(x: SymbolicTensor): SymbolicTensor {
  return geluOp.apply([x], {})[0]!;
}
