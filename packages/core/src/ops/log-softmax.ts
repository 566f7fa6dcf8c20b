import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { normalizeAxis } from '../graph/shape.js';
import { exp } from './exp.js';
import { mul } from './mul.js';
import { softmaxKernel, type SoftmaxAttributes } from './softmax.js';
import { sub } from './sub.js';
import { sum } from './sum.js';

/** The `logSoftmax` op. Gradient: dy - exp(y) * sum(dy, axis). */
export const logSoftmaxOp = defineOp<SoftmaxAttributes>({
  name: 'logSoftmax',
  infer([x]) {
    expectDtype('logSoftmax', 'x', x!, FLOAT_TYPES);
    return [{ dtype: x!.dtype, shape: x!.shape }];
  },
  lower: (context, inputs, { axis }) => context.emit('LogSoftmax', inputs, { axis: attr.int(axis) }),
  reference: ([x], { axis }) => [softmaxKernel('logSoftmax', x!, axis, true)],
  gradient: ({ outputs, outputGradients, attributes }) => {
    const dy = outputGradients[0]!;
    return [sub(dy, mul(exp(outputs[0]!), sum(dy, attributes.axis, true)))];
  },
});

/**
 * Log-softmax along an axis, computed stably.
 *
 * @param x - a float tensor
 * @param axis - the axis (default: last)
 * @public
 */
export function logSoftmax(x: SymbolicTensor, axis = -1): SymbolicTensor {
  return logSoftmaxOp.apply([x], { axis: normalizeAxis('logSoftmax', axis, x.rank) })[0]!;
}
