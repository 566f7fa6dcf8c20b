import { attr } from '../graph/attributes.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { adaptivePoolMatrix, separableMap, separableMapOp, transposeMatrix } from './separable-map.js';
import { expectOutputSize, spatialSize } from './spatial.js';

/** Attributes of {@link adaptiveAvgPool2d}. */
export interface AdaptiveAvgPoolAttributes {
  readonly outputSize: readonly [number, number];
}

function matrices(x: { shape: readonly (number | string)[] }, outputSize: readonly [number, number]) {
  return { rows: adaptivePoolMatrix(x.shape[2] as number, outputSize[0]), columns: adaptivePoolMatrix(x.shape[3] as number, outputSize[1]) };
}

/**
 * The `adaptiveAvgPool2d` op with PyTorch's bin rule. Lowered as AveragePool
 * when the sizes divide evenly, else as a separable matrix product.
 * Gradient: the transposed pooling matrices applied to dy.
 */
export const adaptiveAvgPool2dOp = defineOp<AdaptiveAvgPoolAttributes>({
  name: 'adaptiveAvgPool2d',
  infer([x], { outputSize }) {
    spatialSize('adaptiveAvgPool2d', x!);
    const [oh, ow] = expectOutputSize('adaptiveAvgPool2d', outputSize);
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, x!.shape[1]!, oh, ow] }];
  },
  lower(context, inputs, { outputSize }) {
    const x = context.node.inputs[0]!;
    const [h, w] = [x.shape[2] as number, x.shape[3] as number];
    if (h % outputSize[0] === 0 && w % outputSize[1] === 0) {
      const kernel = [h / outputSize[0], w / outputSize[1]];
      return context.emit('AveragePool', inputs, { kernel_shape: attr.ints(kernel), strides: attr.ints(kernel) });
    }
    return separableMapOp.lower(context, inputs, matrices(x, outputSize));
  },
  reference: ([x], { outputSize }, context) => separableMapOp.reference([x!], matrices(x!, outputSize), context),
  gradient: ({ inputs, outputGradients, attributes }) => {
    const { rows, columns } = matrices(inputs[0]!, attributes.outputSize);
    return [separableMap(outputGradients[0]!, transposeMatrix(rows), transposeMatrix(columns))];
  },
});

/**
 * Adaptive average pooling to `outputSize` as `torch.nn.AdaptiveAvgPool2d`
 * (bins may overlap when the sizes do not divide).
 *
 * @param x - [N, C, H, W] with static H, W
 * @param outputSize - [outH, outW] (a number for both)
 * @throws {@link ShapeError} for a bad input or size
 * @public
 */
export function adaptiveAvgPool2d(x: SymbolicTensor, outputSize: number | readonly [number, number]): SymbolicTensor {
  const size: [number, number] = typeof outputSize === 'number' ? [outputSize, outputSize] : [outputSize[0], outputSize[1]];
  return adaptiveAvgPool2dOp.apply([x], { outputSize: size })[0]!;
}
