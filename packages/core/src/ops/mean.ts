import type { SymbolicTensor } from '../graph/graph.js';
import { broadcastTo } from './broadcast-to.js';
import { div } from './div.js';
import { defineReduction, keptShape, resolveAxes } from './reduce.js';
import { reshape } from './reshape.js';
import { sizeOf } from './size-of.js';

/** The `mean` reduction. Gradient: dy / count broadcast back to x's shape. */
export const meanOp = defineReduction({
  name: 'mean',
  onnx: 'ReduceMean',
  initial: 0,
  combine: (a, v) => a + v,
  finish: (a, count) => a / count,
  gradient: ({ inputs, outputGradients, attributes }) => {
    const x = inputs[0]!;
    const spread = broadcastTo(reshape(outputGradients[0]!, keptShape(x, attributes.axes)), x.shape);
    return div(spread, sizeOf(x, attributes.axes));
  },
});

/**
 * Mean over axes.
 *
 * @param x - a float tensor
 * @param axes - axes to reduce; all when omitted
 * @param keepDims - keep reduced axes with size 1
 * @throws {@link ShapeError} for an axis out of range
 * @public
 */
export function mean(x: SymbolicTensor, axes?: number | readonly number[], keepDims = false): SymbolicTensor {
  return meanOp.apply([x], { axes: resolveAxes('mean', x, axes), keepDims })[0]!;
}
