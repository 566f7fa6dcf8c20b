import type { SymbolicTensor } from '../graph/graph.js';
import { broadcastTo } from './broadcast-to.js';
import { cast } from './cast.js';
import { div } from './div.js';
import { equal } from './equal.js';
import { mul } from './mul.js';
import { defineReduction, keptShape, resolveAxes } from './reduce.js';
import { reshape } from './reshape.js';
import { sum } from './sum.js';

/** The `max` reduction. Gradient: dy shared equally among the maximal elements (as `torch.amax`). */
export const maxOp = defineReduction({
  name: 'max',
  onnx: 'ReduceMax',
  initial: -Infinity,
  combine: (a, v) => (v > a || Number.isNaN(v) ? v : a),
  gradient: ({ inputs, outputs, outputGradients, attributes }) => {
    const x = inputs[0]!;
    const kept = keptShape(x, attributes.axes);
    const isMax = cast(equal(x, broadcastTo(reshape(outputs[0]!, kept), x.shape)), x.dtype);
    const ties = sum(isMax, attributes.axes, true);
    return mul(isMax, broadcastTo(div(reshape(outputGradients[0]!, kept), ties), x.shape));
  },
});

/**
 * Maximum over axes.
 *
 * @param x - a float tensor
 * @param axes - axes to reduce; all when omitted
 * @param keepDims - keep reduced axes with size 1
 * @public
 */
export function max(x: SymbolicTensor, axes?: number | readonly number[], keepDims = false): SymbolicTensor {
  return maxOp.apply([x], { axes: resolveAxes('max', x, axes), keepDims })[0]!;
}
