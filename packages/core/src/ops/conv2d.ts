import { attr } from '../graph/attributes.js';
import { DTypeError, ShapeError } from '../errors.js';
import { dimsEqual, formatShape, multiplyDims } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { expectRank } from '../graph/shape.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { conv2dBackpropFilter } from './conv2d-backprop-filter.js';
import { conv2dBackpropInput } from './conv2d-backprop-input.js';
import { convOutputSize, onnxGeometry, resolveGeometry, type Conv2dOptions, type ConvGeometry } from './conv-geometry.js';
import { sum } from './sum.js';

/**
 * Reference 2-D convolution (cross-correlation, NCHW, OIHW weights); also used
 * by the backprop ops' reference kernels through their own loops.
 */
export function conv2dKernel(
  x: FloatArray,
  xShape: readonly number[],
  w: FloatArray,
  wShape: readonly number[],
  out: FloatArray,
  outShape: readonly number[],
  g: ConvGeometry,
): void {
  const [n, c, h, width] = xShape as [number, number, number, number];
  const [o, cg, kh, kw] = wShape as [number, number, number, number];
  const [, , oh, ow] = outShape as [number, number, number, number];
  const og = o / g.groups;
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < o; oc++) {
      const group = Math.floor(oc / og);
      for (let y = 0; y < oh; y++) {
        for (let xo = 0; xo < ow; xo++) {
          let total = 0;
          for (let ic = 0; ic < cg; ic++) {
            const channel = group * cg + ic;
            for (let i = 0; i < kh; i++) {
              const yi = y * g.stride[0] - g.padding[0] + i * g.dilation[0];
              if (yi < 0 || yi >= h) continue;
              for (let j = 0; j < kw; j++) {
                const xi = xo * g.stride[1] - g.padding[1] + j * g.dilation[1];
                if (xi < 0 || xi >= width) continue;
                total += x[((b * c + channel) * h + yi) * width + xi]! * w[((oc * cg + ic) * kh + i) * kw + j]!;
              }
            }
          }
          out[((b * o + oc) * oh + y) * ow + xo] = total;
        }
      }
    }
  }
}

/** The `conv2d` op (ONNX Conv). Gradients: `conv2dBackpropInput`, `conv2dBackpropFilter`, and the sum of dy over N, H, W for the bias. */
export const conv2dOp = defineOp<ConvGeometry>({
  name: 'conv2d',
  infer([x, w, bias], geometry) {
    expectDtype('conv2d', 'x', x!, FLOAT_TYPES);
    if (w!.dtype !== x!.dtype) throw new DTypeError(`conv2d: expected weight of dtype ${x!.dtype}; found ${w!.dtype}`);
    expectRank('conv2d', 'x', x!.shape, 4);
    expectRank('conv2d', 'weight', w!.shape, 4);
    const [o, cg, kh, kw] = w!.shape;
    if (typeof o !== 'number' || typeof kh !== 'number' || typeof kw !== 'number' || o % geometry.groups !== 0) {
      throw new ShapeError(`conv2d: expected weight [out, in/groups, kh, kw] with out divisible by groups ${geometry.groups}; found ${formatShape(w!.shape)}`);
    }
    if (!dimsEqual(multiplyDims(cg!, geometry.groups), x!.shape[1]!)) {
      throw new ShapeError(
        `conv2d: weight ${formatShape(w!.shape)} with groups ${geometry.groups} expects ${multiplyDims(cg!, geometry.groups)} input channels; x ${formatShape(x!.shape)} has ${x!.shape[1]}`,
      );
    }
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== o)) {
      throw new ShapeError(`conv2d: expected bias of shape [${o}]; found ${formatShape(bias.shape)}`);
    }
    const oh = convOutputSize('conv2d', x!.shape, 0, kh, geometry);
    const ow = convOutputSize('conv2d', x!.shape, 1, kw, geometry);
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, o, oh, ow] }];
  },
  lower(context, inputs, geometry) {
    const g = onnxGeometry(geometry);
    return context.emit('Conv', inputs, {
      strides: attr.ints(g.strides),
      pads: attr.ints(g.pads),
      dilations: attr.ints(g.dilations),
      group: attr.int(g.group),
    });
  },
  reference([x, w, bias], geometry) {
    const [n] = x!.shape as [number];
    const [o, , kh, kw] = w!.shape as [number, number, number, number];
    const oh = convOutputSize('conv2d', x!.shape, 0, kh, geometry);
    const ow = convOutputSize('conv2d', x!.shape, 1, kw, geometry);
    const out = floatTensor(x!.dtype, [n, o, oh, ow]);
    const od = out.data as FloatArray;
    conv2dKernel(floatData('conv2d', x!), x!.shape, floatData('conv2d', w!), w!.shape, od, out.shape, geometry);
    if (bias) {
      const bd = floatData('conv2d', bias);
      for (let i = 0; i < od.length; i++) od[i]! += bd[Math.floor(i / (oh * ow)) % o]!;
    }
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes, needsGradient }) => {
    const [x, w, bias] = inputs as [SymbolicTensor, SymbolicTensor, SymbolicTensor | undefined];
    const dy = outputGradients[0]!;
    return [
      needsGradient[0] ? conv2dBackpropInput(dy, w, [x.shape[2] as number, x.shape[3] as number], attributes) : undefined,
      needsGradient[1] ? conv2dBackpropFilter(x, dy, [w.shape[2] as number, w.shape[3] as number], attributes) : undefined,
      ...(bias ? [needsGradient[2] ? sum(dy, [0, 2, 3]) : undefined] : []),
    ];
  },
});

/**
 * 2-D convolution as `torch.nn.functional.conv2d` (NCHW input, OIHW weight).
 *
 * @param x - [N, C, H, W] with static H, W
 * @param weight - [O, C/groups, kh, kw]
 * @param bias - [O], optional
 * @param options - stride, padding, dilation, groups
 * @returns [N, O, H', W']
 * @throws {@link ShapeError} when the shapes or options do not fit
 * @public
 */
export function conv2d(x: SymbolicTensor, weight: SymbolicTensor, bias?: SymbolicTensor, options?: Conv2dOptions): SymbolicTensor {
  const geometry = resolveGeometry('conv2d', options);
  return conv2dOp.apply(bias ? [x, weight, bias] : [x, weight], geometry)[0]!;
}
