import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { nearestMatrix, separableMap, separableMapOp, transposeMatrix } from './separable-map.js';
import { spatialSize } from './spatial.js';

function matrices(x: { shape: readonly (number | string)[] }) {
  return { rows: nearestMatrix(x.shape[2] as number, 2), columns: nearestMatrix(x.shape[3] as number, 2) };
}

/**
 * The `upsampleNearest2x` op: `F.interpolate(scale_factor=2, mode='nearest')`.
 * Lowered as ONNX Resize (nearest, asymmetric, floor). Gradient: the sum of
 * dy over each 2x2 block.
 */
export const upsampleNearest2xOp = defineOp<object>({
  name: 'upsampleNearest2x',
  infer([x]) {
    const [h, w] = spatialSize('upsampleNearest2x', x!);
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, x!.shape[1]!, 2 * h, 2 * w] }];
  },
  lower: (context, [x]) =>
    context.emit('Resize', [x!, '', context.constant(HostTensor.from('float32', [4], [1, 1, 2, 2]))], {
      mode: attr.string('nearest'),
      coordinate_transformation_mode: attr.string('asymmetric'),
      nearest_mode: attr.string('floor'),
    }),
  reference: ([x], _attributes, context) => separableMapOp.reference([x!], matrices(x!), context),
  gradient: ({ inputs, outputGradients }) => {
    const { rows, columns } = matrices(inputs[0]!);
    return [separableMap(outputGradients[0]!, transposeMatrix(rows), transposeMatrix(columns))];
  },
});

/**
 * Nearest-neighbour upsampling by 2 of NCHW feature maps.
 *
 * @param x - [N, C, H, W] with static H, W
 * @public
 */
export function upsampleNearest2x(x: SymbolicTensor): SymbolicTensor {
  return upsampleNearest2xOp.apply([x], {})[0]!;
}
