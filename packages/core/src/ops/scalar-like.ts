import type { LoweringContext } from '../graph/op.js';
import { HostTensor } from '../tensor/host-tensor.js';

/** A rank-0 constant of the dtype of the first input of the node being lowered. */
export function scalarLike(context: LoweringContext, value: number): HostTensor {
  const dtype = context.node.inputs[0]!.dtype;
  return HostTensor.from(dtype === 'float16' || dtype === 'float64' ? dtype : 'float32', [], [value]);
}
