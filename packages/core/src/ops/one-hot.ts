import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { expectPositiveInteger } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import type { DataType } from '../tensor/dtype.js';

/** Attributes of {@link oneHot}. */
export interface OneHotAttributes {
  readonly depth: number;
  readonly dtype: DataType;
}

/** The `oneHot` op (new last axis). Not differentiable. */
export const oneHotOp = defineOp<OneHotAttributes>({
  name: 'oneHot',
  infer([labels], { depth, dtype }) {
    expectDtype('oneHot', 'labels', labels!, ['int64', 'int32']);
    expectPositiveInteger('oneHot', 'depth', depth);
    expectDtype('oneHot', 'dtype', { dtype, shape: [] }, FLOAT_TYPES);
    return [{ dtype, shape: [...labels!.shape, depth] }];
  },
  lower: (context, [labels], { depth, dtype }) =>
    context.emit('OneHot', [labels!, context.int64s([depth]), context.constant(HostTensor.from(dtype, [2], [0, 1]))], { axis: attr.int(-1) }),
  reference([labels], { depth, dtype }) {
    const values = labels!.toArray();
    const out = HostTensor.zeros(dtype === 'float64' ? 'float64' : 'float32', [...labels!.shape, depth]);
    values.forEach((label, i) => {
      if (!(Number.isInteger(label) && label >= 0 && label < depth)) throw new ShapeError(`oneHot: label ${label} is outside 0..${depth - 1}`);
      out.data[i * depth + label] = 1;
    });
    return [out];
  },
});

/**
 * One-hot encoding of integer labels along a new last axis.
 *
 * @param labels - int64 or int32 class indices
 * @param depth - number of classes
 * @param dtype - float dtype of the result
 * @public
 */
export function oneHot(labels: SymbolicTensor, depth: number, dtype: DataType = 'float32'): SymbolicTensor {
  return oneHotOp.apply([labels], { depth, dtype })[0]!;
}
