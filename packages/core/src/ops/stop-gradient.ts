import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';

/**
 * The `stopGradient` op: the identity in the forward pass, a wall for
 * gradients (as `torch.no_grad()` or `detach()`): nothing computed before it
 * is part of the backward pass.
 */
export const stopGradientOp = defineOp<object>({
  name: 'stopGradient',
  infer: ([x]) => [{ dtype: x!.dtype, shape: x!.shape }],
  lower: (context, inputs) => context.emit('Identity', inputs),
  reference: ([x]) => [x!],
  stopsGradient: true,
});

/**
 * The same values, with no gradient flowing back through them (PyTorch's
 * `detach()`). Gradients of anything computed only before it are zero, and the
 * backward pass does not include those computations.
 *
 * @param x - any tensor
 * @public
 */
export function stopGradient(x: SymbolicTensor): SymbolicTensor {
  return stopGradientOp.apply([x], {})[0]!;
}
