import { dimsEqual, type Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { reshape } from './reshape.js';
import { sum } from './sum.js';

/**
 * Sums a gradient over the axes along which a tensor of `shape` was broadcast,
 * then reshapes it to `shape`. Used by the gradients of broadcasting ops.
 */
export function reduceToShape(gradient: SymbolicTensor, shape: readonly Dim[]): SymbolicTensor {
  const lead = gradient.rank - shape.length;
  const axes: number[] = [];
  for (let axis = 0; axis < gradient.rank; axis++) {
    if (axis < lead) axes.push(axis);
    else if (shape[axis - lead] === 1 && !dimsEqual(gradient.shape[axis]!, 1)) axes.push(axis);
  }
  const summed = axes.length > 0 ? sum(gradient, axes, true) : gradient;
  return reshape(summed, shape);
}
