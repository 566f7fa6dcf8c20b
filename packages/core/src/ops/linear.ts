import { ShapeError } from '../errors.js';
import { dimsEqual, formatShape } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { graphOf } from '../graph/op.js';
import { add } from './add.js';
import { matmul } from './matmul.js';
import { transpose } from './transpose.js';

/**
 * A linear layer `x · weightᵀ + bias` as `torch.nn.functional.linear`.
 * Composed of {@link matmul}, {@link transpose} and {@link add}, which supply
 * its lowering, reference kernel and gradient.
 *
 * @param x - [..., in]
 * @param weight - [out, in]
 * @param bias - [out], optional
 * @returns [..., out]
 * @throws {@link ShapeError} when the feature sizes disagree
 * @public
 */
export function linear(x: SymbolicTensor, weight: SymbolicTensor, bias?: SymbolicTensor): SymbolicTensor {
  graphOf('linear', bias ? [x, weight, bias] : [x, weight]);
  if (weight.rank !== 2 || x.rank < 2 || !dimsEqual(x.shape[x.rank - 1]!, weight.shape[1]!)) {
    throw new ShapeError(`linear: expected x [..., in] and weight [out, in]; found x ${formatShape(x.shape)} and weight ${formatShape(weight.shape)}`);
  }
  if (bias && (bias.rank !== 1 || !dimsEqual(bias.shape[0]!, weight.shape[0]!))) {
    throw new ShapeError(`linear: expected bias of shape [${weight.shape[0]}]; found ${formatShape(bias.shape)}`);
  }
  const product = matmul(x, transpose(weight, [1, 0]));
  return bias ? add(product, bias) : product;
}
