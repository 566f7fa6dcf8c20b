import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES, type LoweringContext } from '../graph/op.js';
import { normalizeAxis } from '../graph/shape.js';
import { exp } from './exp.js';
import { mul } from './mul.js';
import { softmaxKernel, type SoftmaxAttributes } from './softmax.js';
import { sub } from './sub.js';
import { sum } from './sum.js';

/**
 * Emits log-softmax along a (non-negative) axis as `s - log(sum(exp(s)))`
 * with `s = x - max(x)`: ops that every provider has, where ONNX's
 * `LogSoftmax` is missing from onnxruntime's WebGPU provider.
 *
 * @returns the output's ONNX name
 */
export function lowerLogSoftmax(context: LoweringContext, x: string, axis: number): string {
  const axes = context.int64s([axis]);
  const keep = { keepdims: attr.int(1) };
  const maximum = context.emit('ReduceMax', [x, axes], keep)[0]!;
  const shifted = context.emit('Sub', [x, maximum])[0]!;
  const total = context.emit('ReduceSum', [context.emit('Exp', [shifted])[0]!, axes], keep)[0]!;
  return context.emit('Sub', [shifted, context.emit('Log', [total])[0]!])[0]!;
}

/**
 * The `logSoftmax` op. Gradient: dy - exp(y) * sum(dy, axis). Lowered as
 * `s - log(sum(exp(s)))` with `s = x - max(x)` (ReduceMax, Sub, Exp,
 * ReduceSum, Log) rather than ONNX's `LogSoftmax`, which onnxruntime's WebGPU
 * provider lacks (the node, and the logits with it, would go to the CPU).
 */
export const logSoftmaxOp = defineOp<SoftmaxAttributes>({
  name: 'logSoftmax',
  infer([x]) {
    expectDtype('logSoftmax', 'x', x!, FLOAT_TYPES);
    return [{ dtype: x!.dtype, shape: x!.shape }];
  },
  lower: (context, [x], { axis }) => [lowerLogSoftmax(context, x!, axis)],
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
