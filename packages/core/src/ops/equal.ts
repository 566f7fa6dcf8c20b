import type { SymbolicTensor } from '../graph/graph.js';
import type { TensorLike } from '../graph/op.js';
import { applyComparison, defineComparison } from './compare.js';

/** The `equal` op: `a == b` as bool; not differentiable. */
export const equalOp = defineComparison('equal', 'Equal', (a, b) => a === b);

/**
 * Elementwise `a == b` with broadcasting, as a bool tensor.
 *
 * @public
 */
export function equal(a: SymbolicTensor, b: TensorLike): SymbolicTensor {
  return applyComparison(equalOp, a, b);
}
