import { attr } from '../graph/attributes.js';
import { DTypeError, ShapeError } from '../errors.js';
import { dimsEqual, formatShape } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype } from '../graph/op.js';
import { expectRank } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { floatData, floatTensor } from '../reference/kernel-utils.js';
import { conv2dKernel } from './conv2d.js';
import { convOutputSize, resolveGeometry, type Conv2dOptions, type ConvGeometry } from './conv-geometry.js';

/**
 * A weight quantized symmetrically per output channel: `weight[o] ≈ values[o] * scales[o]`.
 *
 * @public
 */
export interface QuantizedWeight {
  /** int8 values in [-127, 127], the weight's shape. */
  readonly values: HostTensor<'int8'>;
  /** float32 scale of each output channel (axis 0), [O]. */
  readonly scales: HostTensor<'float32'>;
}

/**
 * Quantizes a weight symmetrically per output channel (axis 0): the scale of
 * channel o is `max|w[o]| / 127` (1 for an all-zero channel), and each value
 * is `round(w / scale)` (half to even) clamped to [-127, 127]. The scales and
 * quotients are computed in float32, as ONNX Runtime's QuantizeLinear.
 *
 * @param weight - float32, float16 or float64 [O, ...]
 * @returns the int8 values and the float32 scales
 * @throws {@link ShapeError} for a weight of rank 0
 * @public
 */
export function quantizeWeightPerChannel(weight: HostTensor): QuantizedWeight {
  if (weight.rank === 0) throw new ShapeError('quantizeWeightPerChannel: expected a weight [O, ...] of rank >= 1; found a scalar');
  const dense = (weight.dtype === 'float32' || weight.dtype === 'float64' ? weight : weight.cast('float32')).contiguous();
  const data = floatData('quantizeWeightPerChannel', dense);
  const channels = weight.shape[0]!;
  const per = channels === 0 ? 0 : data.length / channels;
  const values = new Int8Array(data.length);
  const scales = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    let largest = 0;
    for (let i = o * per; i < (o + 1) * per; i++) largest = Math.max(largest, Math.abs(Math.fround(data[i]!)));
    const scale = largest === 0 ? 1 : Math.fround(largest / 127);
    scales[o] = scale;
    for (let i = o * per; i < (o + 1) * per; i++) values[i] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(Math.fround(data[i]!) / scale))));
  }
  return { values: HostTensor.from('int8', weight.shape, values), scales: HostTensor.from('float32', [channels], scales) };
}

/**
 * A quantized convolution weight [O, C, kh, kw] rearranged to the matrix
 * [kh * kw * C, O] (rows in (i, j, c) order) that {@link quantizedConv2d}
 * multiplies its im2col rows by.
 *
 * @param values - int8 [O, C, kh, kw]
 * @returns int8 [kh, kw, C, O]
 * @throws {@link ShapeError} for a weight that is not of rank 4
 * @public
 */
export function convWeightMatrix(values: HostTensor<'int8'>): HostTensor<'int8'> {
  if (values.rank !== 4) throw new ShapeError(`convWeightMatrix: expected int8 values [O, C, kh, kw]; found [${values.shape.join(', ')}]`);
  const [o, c, kh, kw] = values.shape as [number, number, number, number];
  const source = values.contiguous().data;
  const out = new Int8Array(source.length);
  for (let oc = 0; oc < o; oc++)
    for (let ic = 0; ic < c; ic++) for (let k = 0; k < kh * kw; k++) out[(k * c + ic) * o + oc] = source[(oc * c + ic) * kh * kw + k]!;
  return HostTensor.from('int8', [kh, kw, c, o], out);
}

/** Rounds to the nearest integer, ties to even (C's `nearbyint` in the default rounding mode). */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The per-tensor uint8 quantization of {@link dynamicQuantizationParameters}: `q = clamp(round(x / scale) + zeroPoint, 0, 255)`. @public */
export interface DynamicQuantization {
  /** The float32 step between quantized values. */
  scale: number;
  /** The uint8 value that represents 0. */
  zeroPoint: number;
}

/**
 * ONNX DynamicQuantizeLinear's parameters of a float32 tensor, each step in
 * float32 as ONNX Runtime computes them: the range [min(0, min x), max(0, max x)],
 * `scale = (max - min) / 255` (1 when the range is empty) and the uint8 zero
 * point `round(-min / scale)` clamped to [0, 255].
 *
 * @param data - the tensor's values
 * @returns the scale and the zero point
 * @public
 */
export function dynamicQuantizationParameters(data: ArrayLike<number>): DynamicQuantization {
  let low = 0;
  let high = 0;
  for (let i = 0; i < data.length; i++) {
    const value = Math.fround(data[i]!);
    if (value < low) low = value;
    if (value > high) high = value;
  }
  const scale = high === low ? 1 : Math.fround(Math.fround(high - low) / 255);
  const zeroPoint = Math.max(0, Math.min(255, Math.round(Math.fround(0 - Math.fround(low / scale)))));
  return { scale, zeroPoint };
}

/**
 * The `quantizedConv2d` op: a float32 convolution computed in 8-bit integers.
 * The input is quantized per tensor at run time (DynamicQuantizeLinear, uint8
 * with a zero point), the weight is int8 per output channel with zero point 0,
 * laid out [kh, kw, C, O] ({@link convWeightMatrix}); the int32 products are
 * scaled by `x_scale * w_scale[o]` and the float32 bias is added.
 *
 * Lowered channels-last, so that the integer product is one MatMulInteger
 * with a constant int8 right-hand side (which ONNX Runtime's CPU provider
 * packs once and runs with its u8 x s8 kernels, VNNI where the CPU has it):
 * the uint8 input is transposed to NHWC, padded with its zero point, the
 * kh x kw shifted windows are concatenated along channels (im2col in 8 bits),
 * multiplied by the weight matrix, scaled, and transposed back to NCHW.
 * Not differentiable (the int8 path is for inference).
 */
export const quantizedConv2dOp = defineOp<ConvGeometry>({
  name: 'quantizedConv2d',
  infer([x, w, scales, bias], geometry) {
    expectDtype('quantizedConv2d', 'x', x!, ['float32']);
    expectDtype('quantizedConv2d', 'weight', w!, ['int8']);
    expectDtype('quantizedConv2d', 'scales', scales!, ['float32']);
    expectRank('quantizedConv2d', 'x', x!.shape, 4);
    expectRank('quantizedConv2d', 'weight', w!.shape, 4);
    const [kh, kw, c, o] = w!.shape;
    if (typeof o !== 'number' || typeof kh !== 'number' || typeof kw !== 'number' || geometry.groups !== 1)
      throw new ShapeError(
        `quantizedConv2d: expected a static weight [kh, kw, in, out] and groups 1; found ${formatShape(w!.shape)}, groups ${geometry.groups}`,
      );
    if (!dimsEqual(c!, x!.shape[1]!))
      throw new ShapeError(`quantizedConv2d: weight ${formatShape(w!.shape)} expects ${c} input channels; x ${formatShape(x!.shape)} has ${x!.shape[1]}`);
    if (scales!.shape.length !== 1 || scales!.shape[0] !== o)
      throw new ShapeError(`quantizedConv2d: expected scales of shape [${o}]; found ${formatShape(scales!.shape)}`);
    if (bias) {
      if (bias.dtype !== 'float32') throw new DTypeError(`quantizedConv2d: expected a float32 bias; found ${bias.dtype}`);
      if (bias.shape.length !== 1 || bias.shape[0] !== o)
        throw new ShapeError(`quantizedConv2d: expected bias of shape [${o}]; found ${formatShape(bias.shape)}`);
    }
    const oh = convOutputSize('quantizedConv2d', x!.shape, 0, kh, geometry);
    const ow = convOutputSize('quantizedConv2d', x!.shape, 1, kw, geometry);
    return [{ dtype: 'float32', shape: [x!.shape[0]!, o, oh, ow] }];
  },
  lower(context, [x, w, scales, bias], geometry) {
    const [kh, kw, channels] = context.node.inputs[1]!.shape as [number, number, number, number];
    const [, , oh, ow] = context.node.outputs[0]!.shape as [unknown, number, number, number];
    const [ph, pw] = geometry.padding;
    const [sh, sw] = geometry.stride;
    const [dh, dw] = geometry.dilation;
    const [xq, xScale, xZeroPoint] = context.emit('DynamicQuantizeLinear', [x!], {}, 3) as [string, string, string];
    let rows = context.emit('Transpose', [xq], { perm: attr.ints([0, 2, 3, 1]) })[0]!;
    if (ph > 0 || pw > 0) rows = context.emit('Pad', [rows, context.int64s([0, ph, pw, 0, 0, ph, pw, 0]), xZeroPoint])[0]!;
    const windows: string[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const start = [i * dh, j * dw];
        const end = [i * dh + (oh - 1) * sh + 1, j * dw + (ow - 1) * sw + 1];
        windows.push(context.emit('Slice', [rows, context.int64s(start), context.int64s(end), context.int64s([1, 2]), context.int64s([sh, sw])])[0]!);
      }
    }
    const columns = windows.length === 1 ? windows[0]! : context.emit('Concat', windows, { axis: attr.int(3) })[0]!;
    const [matrix] = context.emit('Reshape', [w!, context.int64s([kh * kw * channels, -1])]);
    const [accumulated] = context.emit('MatMulInteger', [columns, matrix!, xZeroPoint]);
    const [real] = context.emit('Cast', [accumulated!], { to: attr.int(1) });
    const [channelScales] = context.emit('Mul', [scales!, xScale]);
    let y = context.emit('Mul', [real!, channelScales!])[0]!;
    if (bias) y = context.emit('Add', [y, bias])[0]!;
    return context.emit('Transpose', [y], { perm: attr.ints([0, 3, 1, 2]) });
  },
  reference([x, w, scales, bias], geometry) {
    const [n] = x!.shape as [number];
    const [kh, kw, c, o] = w!.shape as [number, number, number, number];
    const oh = convOutputSize('quantizedConv2d', x!.shape, 0, kh, geometry);
    const ow = convOutputSize('quantizedConv2d', x!.shape, 1, kw, geometry);
    const input = floatData('quantizedConv2d', x!);
    const { scale, zeroPoint } = dynamicQuantizationParameters(input);
    // The quantized input minus its zero point, and the int8 weight (back to OIHW), as exact float64 integers.
    const shifted = new Float64Array(input.length);
    for (let i = 0; i < input.length; i++) {
      shifted[i] = Math.max(0, Math.min(255, roundHalfEven(Math.fround(Math.fround(input[i]!) / scale)) + zeroPoint)) - zeroPoint;
    }
    const hwio = w!.contiguous().data as Int8Array;
    const weight = new Float64Array(hwio.length);
    for (let oc = 0; oc < o; oc++)
      for (let ic = 0; ic < c; ic++) for (let k = 0; k < kh * kw; k++) weight[(oc * c + ic) * kh * kw + k] = hwio[(k * c + ic) * o + oc]!;
    const accumulated = new Float64Array(n * o * oh * ow);
    conv2dKernel(shifted, x!.shape, weight, [o, c, kh, kw], accumulated, [n, o, oh, ow], geometry);
    const out = floatTensor(x!.dtype, [n, o, oh, ow]);
    const channelScales = floatData('quantizedConv2d', scales!);
    const biasData = bias ? floatData('quantizedConv2d', bias) : undefined;
    for (let i = 0; i < accumulated.length; i++) {
      const channel = Math.floor(i / (oh * ow)) % o;
      out.data[i] = accumulated[i]! * channelScales[channel]! * scale + (biasData ? biasData[channel]! : 0);
    }
    return [out];
  },
});

/**
 * A 2-D convolution in 8-bit integers (dynamic quantization): the input is
 * quantized per tensor at run time (uint8, DynamicQuantizeLinear), the weight
 * was quantized per output channel ahead of time ({@link quantizeWeightPerChannel},
 * then {@link convWeightMatrix}); the integer product is scaled back to
 * float32 and the bias added. Groups other than 1 are not supported.
 *
 * @param x - float32 [N, C, H, W] with static H, W
 * @param weight - the quantized weight as graph tensors: int8 `values` [kh, kw, C, O] and float32 `scales` [O]
 * @param bias - float32 [O], optional
 * @param options - stride, padding, dilation
 * @returns float32 [N, O, H', W']
 * @throws {@link ShapeError} or {@link DTypeError} when the shapes or dtypes do not fit
 * @example
 * ```ts
 * const { values, scales } = quantizeWeightPerChannel(convWeight);
 * const w = { values: graph.weight('w.int8', convWeightMatrix(values)), scales: graph.weight('w.scales', scales) };
 * const y = quantizedConv2d(x, w, bias, { padding: 1 });
 * ```
 * @public
 */
export function quantizedConv2d(
  x: SymbolicTensor,
  weight: { readonly values: SymbolicTensor; readonly scales: SymbolicTensor },
  bias?: SymbolicTensor,
  options?: Conv2dOptions,
): SymbolicTensor {
  const geometry = resolveGeometry('quantizedConv2d', options);
  const inputs = [x, weight.values, weight.scales, ...(bias ? [bias] : [])];
  return quantizedConv2dOp.apply(inputs, geometry)[0]!;
}
