import { attr } from '../graph/attributes.js';
import { isStaticShape } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { ONNX_DATA_TYPE } from '../tensor/dtype.js';
import { HostTensor, shapeSize } from '../tensor/host-tensor.js';

/** Attributes of {@link sizeOf}. */
export interface SizeOfAttributes {
  readonly axes: readonly number[];
}

/** The `sizeOf` op: number of elements of x over some axes, as a scalar of x's dtype. Not differentiable. */
export const sizeOfOp = defineOp<SizeOfAttributes>({
  name: 'sizeOf',
  infer: ([x]) => [{ dtype: x!.dtype, shape: [] }],
  lower(context, _inputs, { axes }) {
    const x = context.node.inputs[0]!;
    const dims = axes.map((axis) => x.shape[axis]!);
    const dtype = x.dtype === 'float16' || x.dtype === 'float64' ? x.dtype : 'float32';
    if (isStaticShape(dims)) return [context.constant(HostTensor.from(dtype, [], [shapeSize(dims)]))];
    const count = context.emit('ReduceProd', [context.shapeTensor(dims)], { keepdims: attr.int(0) })[0]!;
    return context.emit('Cast', [count], { to: attr.int(ONNX_DATA_TYPE[dtype]) });
  },
  reference: ([x], { axes }) => [HostTensor.from(x!.dtype === 'float64' ? 'float64' : 'float32', [], [shapeSize(axes.map((a) => x!.shape[a]!))])],
});

/**
 * The number of elements of `x` over `axes` (all when omitted), as a scalar of
 * x's float dtype; computed at run time when a dimension is named.
 *
 * @public
 */
export function sizeOf(x: SymbolicTensor, axes?: readonly number[]): SymbolicTensor {
  return sizeOfOp.apply([x], { axes: axes ?? x.shape.map((_, i) => i) })[0]!;
}
