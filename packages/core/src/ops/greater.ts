import type { SymbolicTensor } from '../graph/graph.js';
import type { TensorLike } from '../graph/op.js';
import { applyComparison, defineComparison } from './compare.js';

/** The `greater` op: `a > b` as bool; not differentiable. */
export const greaterOp = defineComparison('greater', 'Greater', (a, b) => a > b);

/**
 * Elementwise `a > b` with broadcasting, as a bool tensor.
 *
 * @public
 */
export function greater(a: SymbolicTensor, b: TensorLike): SymbolicTensor {
  return applyComparison(greaterOp, a, b);
}
