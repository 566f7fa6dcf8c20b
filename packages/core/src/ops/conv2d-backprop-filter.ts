import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, type LoweringContext } from '../graph/op.js';
import { expectRank } from '../graph/shape.js';
import { floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import type { ConvGeometry } from './conv-geometry.js';

/** Attributes of {@link conv2dBackpropFilter}. */
export interface BackpropFilterAttributes extends ConvGeometry {
  /** Kernel size [kh, kw]. */
  readonly kernelSize: readonly [number, number];
}

/**
 * dW for one group: with x' = x as [C, N, H, W] and dy' = dy as [O, N, Ho, Wo],
 * `Conv(x', dy', dilations = stride, strides = dilation, pads = padding)` is
 * [C, O, >=kh, >=kw]; its top-left kh x kw corner transposed is dW.
 */
function lowerGroup(context: LoweringContext, x: string, dy: string, attributes: BackpropFilterAttributes, channels: [number, number]): string {
  if (isPointwise(attributes)) return lowerPointwiseGroup(context, x, dy, channels);
  const [ph, pw] = attributes.padding;
  const xT = context.emit('Transpose', [x], { perm: attr.ints([1, 0, 2, 3]) })[0]!;
  const dyT = context.emit('Transpose', [dy], { perm: attr.ints([1, 0, 2, 3]) })[0]!;
  const full = context.emit('Conv', [xT, dyT], {
    strides: attr.ints([...attributes.dilation]),
    dilations: attr.ints([...attributes.stride]),
    pads: attr.ints([ph, pw, ph, pw]),
    group: attr.int(1),
  })[0]!;
  const cropped = context.emit('Slice', [full, context.int64s([0, 0]), context.int64s([...attributes.kernelSize]), context.int64s([2, 3])])[0]!;
  return context.emit('Transpose', [cropped], { perm: attr.ints([1, 0, 2, 3]) })[0]!;
}

/** A 1x1 kernel at stride 1 without padding or dilation: every output pixel reads one input pixel. */
function isPointwise({ kernelSize, stride, padding, dilation }: BackpropFilterAttributes): boolean {
  return [...kernelSize, ...stride, ...dilation].every((v) => v === 1) && padding.every((v) => v === 0);
}

/**
 * dW of a pointwise convolution is one matrix product: dy as [O, N*H*W] times
 * x as [C, N*H*W] transposed. As a convolution of x by dy (the general
 * lowering) ORT's CPU provider ran it at a fifth of its GEMM rate (0.5 s for
 * the paper's 1024-channel 16x16 projection at batch 32).
 */
function lowerPointwiseGroup(context: LoweringContext, x: string, dy: string, [c, o]: [number, number]): string {
  const rows = (name: string, count: number) => {
    const channelsFirst = context.emit('Transpose', [name], { perm: attr.ints([1, 0, 2, 3]) })[0]!;
    return context.emit('Reshape', [channelsFirst, context.int64s([count, -1])])[0]!;
  };
  const product = context.emit('Gemm', [rows(dy, o), rows(x, c)], { transB: attr.int(1) })[0]!;
  return context.emit('Reshape', [product, context.int64s([o, c, 1, 1])])[0]!;
}

/** The gradient of conv2d with respect to its weight, lowered as a convolution of x by dy (one matrix product for a pointwise convolution). Not differentiable itself. */
export const conv2dBackpropFilterOp = defineOp<BackpropFilterAttributes>({
  name: 'conv2dBackpropFilter',
  infer([x, dy], attributes) {
    expectRank('conv2dBackpropFilter', 'x', x!.shape, 4);
    expectRank('conv2dBackpropFilter', 'dy', dy!.shape, 4);
    const [c, o] = [x!.shape[1]!, dy!.shape[1]!];
    if (!isStaticDim(c) || !isStaticDim(o) || c % attributes.groups !== 0 || o % attributes.groups !== 0) {
      throw new ShapeError(
        `conv2dBackpropFilter: expected static channel counts divisible by groups ${attributes.groups}; found x ${formatShape(x!.shape)} and dy ${formatShape(dy!.shape)}`,
      );
    }
    return [{ dtype: x!.dtype, shape: [o, c / attributes.groups, ...attributes.kernelSize] }];
  },
  lower(context, [x, dy], attributes) {
    const { groups } = attributes;
    const c = context.node.inputs[0]!.shape[1] as number;
    const o = context.node.inputs[1]!.shape[1] as number;
    if (groups === 1) return [lowerGroup(context, x!, dy!, attributes, [c, o])];
    const pieces: string[] = [];
    for (let g = 0; g < groups; g++) {
      const part = (name: string, size: number) =>
        context.emit('Slice', [name, context.int64s([(g * size) / groups]), context.int64s([((g + 1) * size) / groups]), context.int64s([1])])[0]!;
      pieces.push(lowerGroup(context, part(x!, c), part(dy!, o), attributes, [c / groups, o / groups]));
    }
    return context.emit('Concat', pieces, { axis: attr.int(0) });
  },
  reference([x, dy], attributes) {
    const [n, c, h, width] = x!.shape as [number, number, number, number];
    const [, o, oh, ow] = dy!.shape as [number, number, number, number];
    const [kh, kw] = attributes.kernelSize;
    const cg = c / attributes.groups;
    const og = o / attributes.groups;
    const out = floatTensor(x!.dtype, [o, cg, kh, kw]);
    const od = out.data as FloatArray;
    const xd = floatData('conv2dBackpropFilter', x!);
    const dyd = floatData('conv2dBackpropFilter', dy!);
    for (let oc = 0; oc < o; oc++) {
      const group = Math.floor(oc / og);
      for (let ic = 0; ic < cg; ic++) {
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            let total = 0;
            for (let b = 0; b < n; b++) {
              for (let y = 0; y < oh; y++) {
                const yi = y * attributes.stride[0] - attributes.padding[0] + i * attributes.dilation[0];
                if (yi < 0 || yi >= h) continue;
                for (let xo = 0; xo < ow; xo++) {
                  const xi = xo * attributes.stride[1] - attributes.padding[1] + j * attributes.dilation[1];
                  if (xi < 0 || xi >= width) continue;
                  total += xd[((b * c + group * cg + ic) * h + yi) * width + xi]! * dyd[((b * o + oc) * oh + y) * ow + xo]!;
                }
              }
            }
            od[((oc * cg + ic) * kh + i) * kw + j] = total;
          }
        }
      }
    }
    return [out];
  },
});

/**
 * Gradient of {@link conv2d} with respect to its weight.
 *
 * @public
 */
export function conv2dBackpropFilter(x: SymbolicTensor, dy: SymbolicTensor, kernelSize: readonly [number, number], geometry: ConvGeometry): SymbolicTensor {
  return conv2dBackpropFilterOp.apply([x, dy], { ...geometry, kernelSize })[0]!;
}
