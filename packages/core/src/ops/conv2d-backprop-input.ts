import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { formatShape, multiplyDims } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { expectRank } from '../graph/shape.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { convOutputSize, onnxGeometry, type ConvGeometry } from './conv-geometry.js';

/** Attributes of {@link conv2dBackpropInput}. */
export interface BackpropInputAttributes extends ConvGeometry {
  /** Spatial size [H, W] of the convolution's input. */
  readonly inputSize: readonly [number, number];
}

/** The gradient of conv2d with respect to its input (ONNX ConvTranspose). Not differentiable itself. */
export const conv2dBackpropInputOp = defineOp<BackpropInputAttributes>({
  name: 'conv2dBackpropInput',
  infer([dy, w], attributes) {
    expectRank('conv2dBackpropInput', 'dy', dy!.shape, 4);
    expectRank('conv2dBackpropInput', 'weight', w!.shape, 4);
    const [h, width] = attributes.inputSize;
    const inputShape = [dy!.shape[0]!, multiplyDims(w!.shape[1]!, attributes.groups), h, width];
    const oh = convOutputSize('conv2dBackpropInput', inputShape, 0, w!.shape[2] as number, attributes);
    const ow = convOutputSize('conv2dBackpropInput', inputShape, 1, w!.shape[3] as number, attributes);
    if (dy!.shape[2] !== oh || dy!.shape[3] !== ow || dy!.shape[1] !== w!.shape[0]) {
      throw new ShapeError(
        `conv2dBackpropInput: dy ${formatShape(dy!.shape)} does not match a convolution of ${formatShape(inputShape)} by ${formatShape(w!.shape)} (expected [N, ${w!.shape[0]}, ${oh}, ${ow}])`,
      );
    }
    return [{ dtype: dy!.dtype, shape: inputShape }];
  },
  lower(context, inputs, attributes) {
    const g = onnxGeometry(attributes);
    const w = context.node.inputs[1]!;
    const outputPadding = [0, 1].map((axis) => {
      const kernel = w.shape[2 + axis] as number;
      const dySize = context.node.inputs[0]!.shape[2 + axis] as number;
      const natural = (dySize - 1) * attributes.stride[axis]! - 2 * attributes.padding[axis]! + attributes.dilation[axis]! * (kernel - 1) + 1;
      return attributes.inputSize[axis]! - natural;
    });
    return context.emit('ConvTranspose', inputs, {
      strides: attr.ints(g.strides),
      pads: attr.ints(g.pads),
      dilations: attr.ints(g.dilations),
      group: attr.int(g.group),
      output_padding: attr.ints(outputPadding),
    });
  },
  reference([dy, w], attributes) {
    const [n, o, oh, ow] = dy!.shape as [number, number, number, number];
    const [, cg, kh, kw] = w!.shape as [number, number, number, number];
    const [h, width] = attributes.inputSize;
    const c = cg * attributes.groups;
    const og = o / attributes.groups;
    const out = floatTensor(dy!.dtype, [n, c, h, width]);
    const od = out.data as FloatArray;
    const dyd = floatData('conv2dBackpropInput', dy!);
    const wd = floatData('conv2dBackpropInput', w!);
    for (let b = 0; b < n; b++) {
      for (let oc = 0; oc < o; oc++) {
        const group = Math.floor(oc / og);
        for (let y = 0; y < oh; y++) {
          for (let xo = 0; xo < ow; xo++) {
            const gradient = dyd[((b * o + oc) * oh + y) * ow + xo]!;
            for (let ic = 0; ic < cg; ic++) {
              for (let i = 0; i < kh; i++) {
                const yi = y * attributes.stride[0] - attributes.padding[0] + i * attributes.dilation[0];
                if (yi < 0 || yi >= h) continue;
                for (let j = 0; j < kw; j++) {
                  const xi = xo * attributes.stride[1] - attributes.padding[1] + j * attributes.dilation[1];
                  if (xi < 0 || xi >= width) continue;
                  od[((b * c + group * cg + ic) * h + yi) * width + xi]! += gradient * wd[((oc * cg + ic) * kh + i) * kw + j]!;
                }
              }
            }
          }
        }
      }
    }
    return [out];
  },
});

/**
 * Gradient of {@link conv2d} with respect to its input: the transposed
 * convolution of `dy` by the same weight, cropped to `inputSize`.
 *
 * @public
 */
export function conv2dBackpropInput(dy: SymbolicTensor, weight: SymbolicTensor, inputSize: readonly [number, number], geometry: ConvGeometry): SymbolicTensor {
  return conv2dBackpropInputOp.apply([dy, weight], { ...geometry, inputSize })[0]!;
}
