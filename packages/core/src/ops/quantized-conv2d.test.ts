/**
 * The int8 convolution: ONNX Runtime's lowering (DynamicQuantizeLinear,
 * channels-last im2col, MatMulInteger) and the op's reference kernel, both
 * against a float64 computation of the same quantization written out here:
 * ONNX's DynamicQuantizeLinear rule for the input, a symmetric per-channel
 * int8 weight, exact integer products, then x_scale * w_scale[o] and the bias.
 */
import { describe, expect, it } from 'vitest';
import {
  conv2d,
  convWeightMatrix,
  DTypeError,
  dynamicQuantizationParameters,
  evaluateReference,
  Graph,
  HostTensor,
  quantizedConv2d,
  quantizeWeightPerChannel,
  ShapeError,
} from '../index.js';
import { expectClose, randomTensor, relativeError, runOnnx } from '@diffssl/testing';

/** Round half to even, written independently of the op's helper. */
const nearbyint = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** The float64 convolution of the quantized operands (NCHW, OIHW int8 weight), scaled and biased. */
function expectedConv(
  x: HostTensor<'float32'>,
  weight: HostTensor<'float32'>,
  bias: HostTensor<'float32'> | undefined,
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
): HostTensor<'float64'> {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [o, , kh, kw] = weight.shape as [number, number, number, number];
  // Input: ONNX DynamicQuantizeLinear (range widened to include 0, uint8, zero point), in float32 steps as ONNX Runtime.
  let low = 0;
  let high = 0;
  for (const v of x.data) {
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  const xScale = Math.fround(Math.fround(high - low) / 255);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-Math.fround(low / xScale))));
  const xq = Array.from(x.data, (v) => Math.min(255, Math.max(0, nearbyint(Math.fround(v / xScale)) + zeroPoint)) - zeroPoint);
  // Weight: symmetric int8 per output channel.
  const per = c * kh * kw;
  const wScales: number[] = [];
  const wq: number[] = [];
  for (let oc = 0; oc < o; oc++) {
    const row = Array.from(weight.data.subarray(oc * per, (oc + 1) * per));
    const scale = Math.fround(Math.max(...row.map(Math.abs)) / 127);
    wScales.push(scale);
    wq.push(...row.map((v) => Math.max(-127, Math.min(127, nearbyint(Math.fround(v / scale))))));
  }
  const oh = Math.floor((h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const ow = Math.floor((w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  const out = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++)
      for (let y = 0; y < oh; y++)
        for (let xo = 0; xo < ow; xo++) {
          let total = 0;
          for (let ic = 0; ic < c; ic++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const yi = y * stride[0] - padding[0] + i * dilation[0];
                const xi = xo * stride[1] - padding[1] + j * dilation[1];
                if (yi >= 0 && yi < h && xi >= 0 && xi < w) total += xq[((b * c + ic) * h + yi) * w + xi]! * wq[((oc * c + ic) * kh + i) * kw + j]!;
              }
          out[((b * o + oc) * oh + y) * ow + xo] = total * xScale * wScales[oc]! + (bias ? bias.data[oc]! : 0);
        }
  return HostTensor.from('float64', [n, o, oh, ow], out);
}

describe('quantizeWeightPerChannel', () => {
  it('scales each output channel by its largest magnitude / 127 and rounds half to even', () => {
    const { values, scales } = quantizeWeightPerChannel(HostTensor.from('float32', [2, 3], [1.27, -0.635, 0.005, 0, 0, 0]));
    // Channel 0: scale 0.01; 1.27 -> 127, -0.635 -> -63.5 -> -64 (even), 0.005 -> 0.5 -> 0. Channel 1 (all zero): scale 1.
    expect(Array.from(scales.data)).toEqual([Math.fround(0.01), 1]);
    expect(Array.from(values.data)).toEqual([127, -64, 0, 0, 0, 0]);
  });

  it('lays a weight out as the [kh, kw, C, O] matrix', () => {
    const values = HostTensor.from('int8', [2, 1, 1, 2], [1, 2, 3, 4]);
    // [o][c][i][j] -> [i][j][c][o]: (0,0,0,0)=1 (0,0,0,1)=2 (1,0,0,0)=3 (1,0,0,1)=4.
    expect(Array.from(convWeightMatrix(values).data)).toEqual([1, 3, 2, 4]);
    expect(convWeightMatrix(values).shape).toEqual([1, 2, 1, 2]);
  });
});

describe('dynamicQuantizationParameters', () => {
  it('widens the range to include 0, divides it by 255 and rounds the zero point', () => {
    // Range [-1, 3]: scale 4/255, zero point round(255/4) = round(63.75) = 64.
    expect(dynamicQuantizationParameters([-1, 0.5, 3])).toEqual({ scale: Math.fround(4 / 255), zeroPoint: 64 });
    // All positive: the range starts at 0, zero point 0.
    expect(dynamicQuantizationParameters([2, 5.1])).toEqual({ scale: Math.fround(Math.fround(5.1) / 255), zeroPoint: 0 });
  });
});

describe('quantizedConv2d', () => {
  const cases: { name: string; x: number[]; w: number[]; stride: [number, number]; padding: [number, number]; dilation: [number, number]; bias: boolean }[] = [
    { name: '3x3 pad 1 with bias', x: [2, 5, 7, 6], w: [4, 5, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], bias: true },
    { name: '3x3 stride 2 (the downsample)', x: [1, 4, 8, 8], w: [6, 4, 3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], bias: true },
    { name: '1x1 (skip and attention projections)', x: [3, 8, 4, 5], w: [5, 8, 1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1], bias: false },
    { name: '3x2 dilation 2, uneven padding', x: [2, 3, 9, 7], w: [4, 3, 3, 2], stride: [1, 2], padding: [2, 0], dilation: [2, 1], bias: true },
  ];
  for (const testCase of cases) {
    it(`${testCase.name}: ONNX Runtime and the reference kernel match the float64 quantized convolution`, async () => {
      // Inputs shifted off zero so that the zero point is not trivial; one output channel much smaller than the others (per-channel scales matter).
      const x = randomTensor(testCase.x, 11, -0.7, 1.9);
      const weight = randomTensor(testCase.w, 12, -0.5, 0.5);
      const per = weight.size / testCase.w[0]!;
      for (let i = 0; i < per; i++) weight.data[i]! *= 0.01;
      const bias = testCase.bias ? randomTensor([testCase.w[0]!], 13) : undefined;
      const expected = expectedConv(x, weight, bias, testCase.stride, testCase.padding, testCase.dilation);

      const graph = new Graph();
      const input = graph.input('x', 'float32', testCase.x);
      const { values, scales } = quantizeWeightPerChannel(weight);
      const y = quantizedConv2d(
        input,
        { values: graph.weight('w', convWeightMatrix(values)), scales: graph.weight('s', scales) },
        bias ? graph.weight('b', bias) : undefined,
        { stride: testCase.stride, padding: testCase.padding, dilation: testCase.dilation },
      );
      const onnx = (await runOnnx({ y }, { x })).y!;
      expect(onnx.dtype).toBe('float32');
      // Only float32 rounding of the scaling separates ONNX Runtime from the exact computation.
      expectClose(onnx.cast('float64'), expected, 1e-6, 'ONNX');
      expectClose(evaluateReference([y], { x })[0]!.cast('float64'), expected, 1e-6, 'reference');
      // The quantization is really there: a float convolution is farther away than rounding.
      const unquantized = expectedConvFloat(x, weight, bias, testCase);
      expect(relativeError(unquantized, expected)).toBeGreaterThan(1e-4);
    });
  }

  it('names the argument and the expected dtype or shape in its errors', () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 2, 4, 4]);
    const values = graph.weight('w', HostTensor.zeros('int8', [3, 3, 2, 4]));
    const scales = graph.weight('s', HostTensor.zeros('float32', [4]));
    const floats = graph.weight('f', HostTensor.zeros('float32', [3, 3, 2, 4]));
    expect(() => quantizedConv2d(x, { values: floats, scales })).toThrow(DTypeError);
    expect(() => quantizedConv2d(x, { values: floats, scales })).toThrow(/weight of dtype int8; found float32/);
    expect(() => quantizedConv2d(graph.input('y', 'float32', [1, 3, 4, 4]), { values, scales })).toThrow(ShapeError);
    expect(() => quantizedConv2d(x, { values, scales: graph.weight('s5', HostTensor.zeros('float32', [5])) })).toThrow(/scales of shape \[4\]; found \[5\]/);
  });
});

/** The unquantized float64 convolution, to show that quantization changes the result. */
function expectedConvFloat(
  x: HostTensor<'float32'>,
  weight: HostTensor<'float32'>,
  bias: HostTensor<'float32'> | undefined,
  geometry: { stride: [number, number]; padding: [number, number]; dilation: [number, number] },
): HostTensor<'float64'> {
  const graph = new Graph();
  const input = graph.input('x', 'float32', x.shape);
  return evaluateReference([conv2d(input, graph.weight('w', weight), bias ? graph.weight('b', bias) : undefined, geometry)], { x })[0]!.cast('float64');
}
