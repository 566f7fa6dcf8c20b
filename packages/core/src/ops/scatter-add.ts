import { attr } from '../graph/attributes.js';
import type { Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype } from '../graph/op.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { forEachAxisSlice } from './gather.js';

/** Attributes of {@link scatterAdd}. */
export interface ScatterAddAttributes {
  readonly axis: number;
  /** Shape of the result. */
  readonly shape: readonly Dim[];
}

/** The `scatterAdd` op, the transpose of {@link gather}: adds slices of `updates` into zeros at `indices`. Not differentiable. */
export const scatterAddOp = defineOp<ScatterAddAttributes>({
  name: 'scatterAdd',
  infer([updates, indices], { shape }) {
    expectDtype('scatterAdd', 'indices', indices!, ['int64']);
    return [{ dtype: updates!.dtype, shape }];
  },
  lower(context, [updates, indices], { axis, shape }) {
    const dtype = context.node.inputs[0]!.dtype;
    const zeros = context.emit('ConstantOfShape', [context.shapeTensor(shape)], { value: attr.tensor(HostTensor.zeros(dtype, [1])) })[0]!;
    const indexShape = shape.map((_, i) => (i === axis ? -1 : 1));
    const reshaped = context.emit('Reshape', [indices!, context.int64s(indexShape)])[0]!;
    const expanded = context.emit('Expand', [reshaped, context.emit('Shape', [updates!])[0]!])[0]!;
    return context.emit('ScatterElements', [zeros, expanded, updates!], { axis: attr.int(axis), reduction: attr.string('add') });
  },
  reference([updates, indices], { axis, shape }, context) {
    const target = context.resolve(shape);
    const out = HostTensor.zeros(updates!.dtype, target);
    const index = indices!.toArray();
    const source = updates!.contiguous().data as unknown as ArrayLike<number>;
    const destination = out.data as unknown as { [k: number]: number };
    const size = target[axis]!;
    forEachAxisSlice(updates!.shape, axis, (o, j, inner) => {
      const to = index[j]! < 0 ? index[j]! + size : index[j]!;
      for (let k = 0; k < inner; k++) destination[(o * size + to) * inner + k]! += source[(o * updates!.shape[axis]! + j) * inner + k]!;
    });
    return [out];
  },
});

/**
 * Adds slices of `updates` along `axis` into a zero tensor of `shape` at
 * `indices` (repeated indices accumulate).
 *
 * @public
 */
export function scatterAdd(updates: SymbolicTensor, indices: SymbolicTensor, axis: number, shape: readonly Dim[]): SymbolicTensor {
  return scatterAddOp.apply([updates, indices], { axis, shape })[0]!;
}
