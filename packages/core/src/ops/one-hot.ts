import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { expectPositiveInteger } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { ONNX_DATA_TYPE, type DataType } from '../tensor/dtype.js';

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
  // ONNX Runtime's CPU OneHot takes int64 indices with float32 values (no int32 indices, no float64 or
  // float16 values): lower to that and cast around it.
  lower(context, [labels], { depth, dtype }) {
    const indices = context.node.inputs[0]!.dtype === 'int64' ? labels! : context.emit('Cast', [labels!], { to: attr.int(ONNX_DATA_TYPE.int64) })[0]!;
    const encoded = context.emit('OneHot', [indices, context.int64s([depth]), context.constant(HostTensor.from('float32', [2], [0, 1]))], {
      axis: attr.int(-1),
    });
    return dtype === 'float32' ? encoded : context.emit('Cast', encoded, { to: attr.int(ONNX_DATA_TYPE[dtype]) });
  },
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
