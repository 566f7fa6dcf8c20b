import type { SymbolicTensor } from '../graph/graph.js';
import { broadcastTo } from './broadcast-to.js';
import { defineReduction, keptShape, resolveAxes } from './reduce.js';
import { reshape } from './reshape.js';

/** The `sum` reduction. Gradient: dy broadcast back to x's shape. */
export const sumOp = defineReduction({
  name: 'sum',
  onnx: 'ReduceSum',
  initial: 0,
  combine: (a, v) => a + v,
  gradient: ({ inputs, outputGradients, attributes }) => {
    const x = inputs[0]!;
    return broadcastTo(reshape(outputGradients[0]!, keptShape(x, attributes.axes)), x.shape);
  },
});

/**
 * Sum over axes.
 *
 * @param x - a float tensor
 * @param axes - axes to reduce (negative counts from the end); all when omitted
 * @param keepDims - keep reduced axes with size 1
 * @throws {@link ShapeError} for an axis out of range
 * @public
 */
export function sum(x: SymbolicTensor, axes?: number | readonly number[], keepDims = false): SymbolicTensor {
  return sumOp.apply([x], { axes: resolveAxes('sum', x, axes), keepDims })[0]!;
}
