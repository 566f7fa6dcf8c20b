import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { assertDataType, isFloatDataType, ONNX_DATA_TYPE, type DataType } from '../tensor/dtype.js';

/** Attributes of {@link cast}. */
export interface CastAttributes {
  readonly to: DataType;
}

/** The `cast` op. Gradient: cast back, between float types only. */
export const castOp = defineOp<CastAttributes>({
  name: 'cast',
  infer([x], { to }) {
    assertDataType(to);
    return [{ dtype: to, shape: x!.shape }];
  },
  lower: (context, inputs, { to }) => context.emit('Cast', inputs, { to: attr.int(ONNX_DATA_TYPE[to]) }),
  reference: ([x], { to }) => [x!.cast(to)],
  gradient: ({ inputs, outputGradients }) => {
    const x = inputs[0]!;
    return [isFloatDataType(x.dtype) ? cast(outputGradients[0]!, x.dtype) : undefined];
  },
});

/**
 * Converts a tensor to another dtype (float16 <-> float32 included; float to
 * integer truncates toward zero).
 *
 * @param x - the tensor
 * @param to - the target dtype
 * @throws {@link DTypeError} for an unknown dtype
 * @public
 */
export function cast(x: SymbolicTensor, to: DataType): SymbolicTensor {
  if (x.dtype === to) return x;
  return castOp.apply([x], { to })[0]!;
}
