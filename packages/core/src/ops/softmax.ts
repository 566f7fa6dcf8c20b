import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { normalizeAxis } from '../graph/shape.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { mul } from './mul.js';
import { sub } from './sub.js';
import { sum } from './sum.js';

/** Attributes of {@link softmax} and `logSoftmax`. */
export interface SoftmaxAttributes {
  readonly axis: number;
}

/** Softmax (or log-softmax) along an axis of a contiguous float tensor. */
export function softmaxKernel(opName: string, x: import('../tensor/host-tensor.js').HostTensor, axis: number, logarithm: boolean) {
  const data = floatData(opName, x);
  const out = floatTensor(x.dtype, x.shape);
  const od = out.data as FloatArray;
  const size = x.shape[axis]!;
  const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (i: number) => (o * size + i) * inner + k;
      let maximum = -Infinity;
      for (let i = 0; i < size; i++) maximum = Math.max(maximum, data[at(i)]!);
      let total = 0;
      for (let i = 0; i < size; i++) total += Math.exp(data[at(i)]! - maximum);
      const logTotal = Math.log(total) + maximum;
      for (let i = 0; i < size; i++) od[at(i)] = logarithm ? data[at(i)]! - logTotal : Math.exp(data[at(i)]! - logTotal);
    }
  }
  return out;
}

/** The `softmax` op. Gradient: y * (dy - sum(dy * y, axis)). */
export const softmaxOp = defineOp<SoftmaxAttributes>({
  name: 'softmax',
  infer([x]) {
    expectDtype('softmax', 'x', x!, FLOAT_TYPES);
    return [{ dtype: x!.dtype, shape: x!.shape }];
  },
  lower: (context, inputs, { axis }) => context.emit('Softmax', inputs, { axis: attr.int(axis) }),
  reference: ([x], { axis }) => [softmaxKernel('softmax', x!, axis, false)],
  gradient: ({ outputs, outputGradients, attributes }) => {
    const y = outputs[0]!;
    const dy = outputGradients[0]!;
    return [mul(y, sub(dy, sum(mul(dy, y), attributes.axis, true)))];
  },
});

/**
 * Softmax along an axis.
 *
 * @param x - a float tensor
 * @param axis - the axis (default: last)
 * @public
 */
export function softmax(x: SymbolicTensor, axis = -1): SymbolicTensor {
  return softmaxOp.apply([x], { axis: normalizeAxis('softmax', axis, x.rank) })[0]!;
}
