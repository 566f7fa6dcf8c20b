import { ShapeError } from '../errors.js';
import { divideDims, formatShape, isStaticDim, multiplyDims, dimsEqual, type Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';

/** Attributes of {@link reshape}. */
export interface ReshapeAttributes {
  /** The target shape, fully resolved (no -1). */
  readonly shape: readonly Dim[];
}

/** The `reshape` op. Gradient: reshape back to the input shape. */
export const reshapeOp = defineOp<ReshapeAttributes>({
  name: 'reshape',
  infer([x], { shape }) {
    if (!dimsEqual(multiplyDims(...x!.shape), multiplyDims(...shape))) {
      throw new ShapeError(`reshape: cannot reshape ${formatShape(x!.shape)} to ${formatShape(shape)}: the element counts differ`);
    }
    return [{ dtype: x!.dtype, shape }];
  },
  lower: (context, [x], { shape }) => context.emit('Reshape', [x!, context.shapeTensor(shape)]),
  reference: ([x], { shape }, context) => [x!.contiguous().reshape(context.resolve(shape))],
  gradient: ({ inputs, outputGradients }) => [reshape(outputGradients[0]!, inputs[0]!.shape)],
});

/**
 * Reshapes a tensor. One entry of `shape` may be -1 (inferred, also from named
 * dimensions: reshaping `['batch', 4, 8]` to `[-1, 8]` gives `['4*batch', 8]`).
 *
 * @param x - the tensor
 * @param shape - the new shape
 * @throws {@link ShapeError} when the element counts differ or -1 cannot be inferred
 * @public
 */
export function reshape(x: SymbolicTensor, shape: readonly Dim[]): SymbolicTensor {
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1) throw new ShapeError(`reshape: at most one -1 is allowed in the target shape; found ${formatShape(shape)}`);
  let resolved = [...shape];
  if (unknown === 1) {
    const known = multiplyDims(...shape.filter((d) => d !== -1));
    const inferred = divideDims(multiplyDims(...x.shape), known);
    if (inferred === undefined) {
      throw new ShapeError(`reshape: cannot infer -1 when reshaping ${formatShape(x.shape)} to ${formatShape(shape)}`);
    }
    resolved = shape.map((d) => (d === -1 ? inferred : d));
  }
  for (const dim of resolved) {
    if (isStaticDim(dim) && !(Number.isSafeInteger(dim) && dim >= 0)) {
      throw new ShapeError(`reshape: expected non-negative dimensions (or one -1); found ${formatShape(shape)}`);
    }
  }
  if (resolved.length === x.rank && resolved.every((d, i) => dimsEqual(d, x.shape[i]!))) return x;
  return reshapeOp.apply([x], { shape: resolved })[0]!;
}
