import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { pair } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { conv2dBackpropInput } from './conv2d-backprop-input.js';
import { conv2dKernel } from './conv2d.js';
import { convOutputSize, resolveGeometry, type ConvGeometry } from './conv-geometry.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { spatialSize } from './spatial.js';

/** Attributes of {@link avgPool2d}. */
export interface AvgPoolAttributes extends ConvGeometry {
  readonly kernelSize: readonly [number, number];
}

function averagingWeight(channels: number, kernel: readonly [number, number]): HostTensor<'float64'> {
  const weight = HostTensor.zeros('float64', [channels, 1, kernel[0], kernel[1]]);
  weight.data.fill(1 / (kernel[0] * kernel[1]));
  return weight;
}

/**
 * The `avgPool2d` op (`nn.AvgPool2d`, count_include_pad=True, floor mode).
 * Gradient: a depthwise transposed convolution of dy with 1/(kh*kw).
 */
export const avgPool2dOp = defineOp<AvgPoolAttributes>({
  name: 'avgPool2d',
  infer([x], attributes) {
    spatialSize('avgPool2d', x!);
    const oh = convOutputSize('avgPool2d', x!.shape, 0, attributes.kernelSize[0], attributes);
    const ow = convOutputSize('avgPool2d', x!.shape, 1, attributes.kernelSize[1], attributes);
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, x!.shape[1]!, oh, ow] }];
  },
  lower(context, inputs, { kernelSize, stride, padding }) {
    const [ph, pw] = padding;
    return context.emit('AveragePool', inputs, {
      kernel_shape: attr.ints([...kernelSize]),
      strides: attr.ints([...stride]),
      pads: attr.ints([ph, pw, ph, pw]),
      count_include_pad: attr.int(1),
    });
  },
  reference([x], attributes) {
    const [n, c] = x!.shape as [number, number];
    const oh = convOutputSize('avgPool2d', x!.shape, 0, attributes.kernelSize[0], attributes);
    const ow = convOutputSize('avgPool2d', x!.shape, 1, attributes.kernelSize[1], attributes);
    const out = floatTensor(x!.dtype, [n, c, oh, ow]);
    const weight = averagingWeight(c, attributes.kernelSize);
    conv2dKernel(floatData('avgPool2d', x!), x!.shape, weight.data, weight.shape, out.data as FloatArray, out.shape, { ...attributes, groups: c });
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes }) => {
    const x = inputs[0]!;
    const channels = x.shape[1]!;
    if (!isStaticDim(channels)) throw new ShapeError(`avgPool2d gradient: needs a static channel count; found ${formatShape(x.shape)}`);
    const weight = x.graph.constant(averagingWeight(channels, attributes.kernelSize).cast(x.dtype));
    return [conv2dBackpropInput(outputGradients[0]!, weight, [x.shape[2] as number, x.shape[3] as number], { ...attributes, groups: channels })];
  },
});

/**
 * Average pooling as `torch.nn.AvgPool2d(kernel, stride, padding)` (padding
 * counted in the average, floor mode).
 *
 * @param x - [N, C, H, W] with static H, W
 * @param kernelSize - window size
 * @param options - stride (default: the kernel size) and padding (default 0)
 * @public
 */
export function avgPool2d(
  x: SymbolicTensor,
  kernelSize: number | readonly [number, number],
  options: { stride?: number | readonly [number, number]; padding?: number | readonly [number, number] } = {},
): SymbolicTensor {
  const kernel = pair(kernelSize);
  const geometry = resolveGeometry('avgPool2d', { stride: options.stride ?? kernel, padding: options.padding ?? 0 });
  return avgPool2dOp.apply([x], { ...geometry, kernelSize: kernel })[0]!;
}
