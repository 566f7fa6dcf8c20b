import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { bilinearMatrix, separableMap, separableMapOp, transposeMatrix } from './separable-map.js';
import { expectOutputSize, spatialSize } from './spatial.js';

/** Attributes of {@link resizeBilinear}. */
export interface ResizeBilinearAttributes {
  readonly size: readonly [number, number];
}

function matrices(x: { shape: readonly (number | string)[] }, size: readonly [number, number]) {
  return { rows: bilinearMatrix(x.shape[2] as number, size[0]), columns: bilinearMatrix(x.shape[3] as number, size[1]) };
}

/**
 * The `resizeBilinear` op: `F.interpolate(mode='bilinear', align_corners=False)`.
 * Lowered as ONNX Resize (linear, half_pixel). Gradient: the transposed
 * interpolation matrices applied to dy.
 */
export const resizeBilinearOp = defineOp<ResizeBilinearAttributes>({
  name: 'resizeBilinear',
  infer([x], { size }) {
    spatialSize('resizeBilinear', x!);
    const [oh, ow] = expectOutputSize('resizeBilinear', size);
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, x!.shape[1]!, oh, ow] }];
  },
  lower(context, [x], { size }) {
    const input = context.node.inputs[0]!;
    const sizes = context.shapeTensor([input.shape[0]!, input.shape[1]!, size[0], size[1]]);
    return context.emit('Resize', [x!, '', '', sizes], {
      mode: attr.string('linear'),
      coordinate_transformation_mode: attr.string('half_pixel'),
    });
  },
  reference: ([x], { size }, context) => separableMapOp.reference([x!], matrices(x!, size), context),
  gradient: ({ inputs, outputGradients, attributes }) => {
    const { rows, columns } = matrices(inputs[0]!, attributes.size);
    return [separableMap(outputGradients[0]!, transposeMatrix(rows), transposeMatrix(columns))];
  },
});

/**
 * Bilinear resize of NCHW feature maps to `size`, as PyTorch's
 * `F.interpolate(x, size, mode='bilinear', align_corners=False)`.
 *
 * @param x - [N, C, H, W] with static H, W
 * @param size - [outH, outW]
 * @public
 */
export function resizeBilinear(x: SymbolicTensor, size: readonly [number, number]): SymbolicTensor {
  if (x.shape[2] === size[0] && x.shape[3] === size[1]) return x;
  return resizeBilinearOp.apply([x], { size })[0]!;
}
