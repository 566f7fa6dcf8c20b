/**
 * Forward values of ops that the op suite (ops.test.ts) reaches only through
 * gradients or not at all, checked against values worked out by hand (in the
 * comments) or, for adaptive pooling, against PyTorch's bin rule written out
 * here as a direct window average, and for bilinear resize against PyTorch's
 * upsample_bilinear2d index rule written out here. Every case runs both paths: the ONNX
 * lowering on ONNX Runtime (CPU, float32) and the reference kernel (float64).
 */
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d,
  avgPool2d,
  batchNorm,
  conv2dBackpropFilter,
  conv2dBackpropInput,
  crossEntropy,
  equal,
  evaluateReference,
  gradients,
  Graph,
  greater,
  HostTensor,
  oneHot,
  resizeBilinear,
  scatterAdd,
  separableMap,
  type SymbolicTensor,
} from '../index.js';
import { expectClose, randomTensor, runOnnx } from '@diffssl/testing';

type Expected = { dtype?: string; shape: number[]; values: number[] };

/** Runs `outputs` on ONNX Runtime and with the reference kernels, and checks both against `expected`. */
async function expectBothPaths(
  outputs: Record<string, SymbolicTensor>,
  feeds: Record<string, HostTensor>,
  expected: Record<string, Expected>,
  tolerance = 1e-6,
): Promise<void> {
  const names = Object.keys(outputs);
  const onnx = await runOnnx(outputs, feeds);
  const reference = evaluateReference(
    names.map((name) => outputs[name]!),
    feeds,
  );
  names.forEach((name, i) => {
    const want = expected[name]!;
    for (const [path, actual] of [
      ['ONNX', onnx[name]!],
      ['reference', reference[i]!],
    ] as const) {
      const label = `${name} (${path})`;
      expect(actual.shape, label).toEqual(want.shape);
      // The reference computes float32 values in float64; the ONNX path keeps the dtype of the graph.
      if (want.dtype && (path === 'ONNX' || !want.dtype.startsWith('float'))) expect(actual.dtype, label).toBe(want.dtype);
      if (want.dtype === 'bool' || want.dtype === 'int64') expect(actual.toArray(), label).toEqual(want.values);
      else expectClose(actual.cast('float64'), HostTensor.from('float64', want.shape, want.values), tolerance, label);
    }
  });
}

const f32 = (shape: number[], values: number[]) => HostTensor.from('float32', shape, values);
const i64 = (shape: number[], values: number[]) =>
  HostTensor.from(
    'int64',
    shape,
    values.map((v) => BigInt(v)),
  );

describe('equal and greater', () => {
  it('equal: broadcasting, a number operand, NaN, int64', async () => {
    const graph = new Graph();
    const a = graph.input('a', 'float32', [2, 3]);
    const b = graph.input('b', 'float32', [3]);
    const labels = graph.input('labels', 'int64', [4]);
    const targets = graph.input('targets', 'int64', [4]);
    const feeds = { a: f32([2, 3], [1, 2, 3, 4, 5, NaN]), b: f32([3], [1, 5, NaN]), labels: i64([4], [0, 2, 2, 1]), targets: i64([4], [0, 1, 2, 2]) };
    await expectBothPaths({ row: equal(a, b), four: equal(a, 4), ints: equal(labels, targets) }, feeds, {
      // [1,2,3]==[1,5,NaN] -> 1,0,0; [4,5,NaN]==[1,5,NaN] -> 0,1,0 (NaN equals nothing)
      row: { dtype: 'bool', shape: [2, 3], values: [1, 0, 0, 0, 1, 0] },
      four: { dtype: 'bool', shape: [2, 3], values: [0, 0, 0, 1, 0, 0] },
      ints: { dtype: 'bool', shape: [4], values: [1, 0, 1, 0] },
    });
  });

  it('greater: broadcasting a column, ties and signed zero are not greater, int64', async () => {
    const graph = new Graph();
    const a = graph.input('a', 'float32', [2, 3]);
    const b = graph.input('b', 'float32', [2, 1]);
    const n = graph.input('n', 'int64', [3]);
    const feeds = { a: f32([2, 3], [1, 2, 3, -0, 5, 6]), b: f32([2, 1], [2, 0]), n: i64([3], [-5, 0, 7]) };
    await expectBothPaths({ y: greater(a, b), positive: greater(n, 0) }, feeds, {
      // row 0 against 2: 1>2 no, 2>2 no, 3>2 yes; row 1 against 0: -0>0 no, 5>0, 6>0
      y: { dtype: 'bool', shape: [2, 3], values: [0, 0, 1, 0, 1, 1] },
      positive: { dtype: 'bool', shape: [3], values: [0, 0, 1] },
    });
  });
});

describe('oneHot', () => {
  it('adds a last axis of size depth with a 1 at each label (int64 and int32 labels; float32, float64 and float16)', async () => {
    const graph = new Graph();
    const labels = graph.input('labels', 'int64', [2, 2]);
    const small = graph.input('small', 'int32', [3]);
    const feeds = { labels: i64([2, 2], [0, 2, 3, 1]), small: HostTensor.from('int32', [3], [1, 0, 1]) };
    await expectBothPaths({ grid: oneHot(labels, 4), pairs: oneHot(small, 2, 'float64'), half: oneHot(small, 3, 'float16') }, feeds, {
      grid: { dtype: 'float32', shape: [2, 2, 4], values: [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0] },
      pairs: { dtype: 'float64', shape: [3, 2], values: [0, 1, 1, 0, 0, 1] },
      half: { dtype: 'float16', shape: [3, 3], values: [0, 1, 0, 1, 0, 0, 0, 1, 0] },
    });
  });

  it("lets crossEntropy's gradient (softmax - oneHot) run in float64 on ONNX Runtime", async () => {
    const graph = new Graph();
    const logits = graph.input('logits', 'float64', [1, 2]);
    const labels = graph.input('labels', 'int64', [1]);
    const [gradient] = gradients(crossEntropy(logits, labels), [logits]);
    // softmax([0, ln 3]) = [1/4, 3/4]; minus the one-hot of label 0
    const feeds = { logits: HostTensor.from('float64', [1, 2], [0, Math.log(3)]), labels: i64([1], [0]) };
    await expectBothPaths({ gradient: gradient! }, feeds, { gradient: { dtype: 'float64', shape: [1, 2], values: [-0.75, 0.75] } }, 1e-12);
  });
});

describe('scatterAdd', () => {
  it('adds rows into zeros at repeated indices (axis 0)', async () => {
    const graph = new Graph();
    const updates = graph.input('updates', 'float32', [3, 2]);
    const indices = graph.input('indices', 'int64', [3]);
    const feeds = { updates: f32([3, 2], [1, 2, 3, 4, 5, 6]), indices: i64([3], [2, 0, 2]) };
    // row 0 <- [3,4]; row 2 <- [1,2] + [5,6]; rows 1 and 3 stay zero
    await expectBothPaths({ y: scatterAdd(updates, indices, 0, [4, 2]) }, feeds, { y: { dtype: 'float32', shape: [4, 2], values: [3, 4, 0, 0, 6, 8, 0, 0] } });
  });

  it('adds columns along axis 1, with a negative index counting from the end', async () => {
    const graph = new Graph();
    const updates = graph.input('updates', 'float32', [2, 3]);
    const indices = graph.input('indices', 'int64', [3]);
    const feeds = { updates: f32([2, 3], [1, 2, 3, 4, 5, 6]), indices: i64([3], [1, -1, 0]) };
    // -1 is column 1 of 2: row 0 -> [3, 1+2], row 1 -> [6, 4+5]
    await expectBothPaths({ y: scatterAdd(updates, indices, 1, [2, 2]) }, feeds, { y: { shape: [2, 2], values: [3, 3, 6, 9] } });
  });
});

describe('separableMap', () => {
  it('computes rows · x · columnsᵀ over the last two axes of each batch item', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [2, 2, 3]);
    const rows = HostTensor.from('float64', [3, 2], [1, 0, 0.5, 0.5, 2, -1]);
    const columns = HostTensor.from('float64', [2, 3], [1, 0, 0, 0, 1, -1]);
    const feeds = { x: f32([2, 2, 3], [1, 2, 3, 4, 5, 6, 0, 1, 0, 1, 0, 0]) };
    // item 0: rows·x = [[1,2,3],[2.5,3.5,4.5],[-2,-1,0]]; ·columnsᵀ takes [r0, r1 - r2] of each row
    // item 1: rows·x = [[0,1,0],[0.5,0.5,0],[-1,2,0]] -> [[0,1],[0.5,0.5],[-1,2]]
    await expectBothPaths({ y: separableMap(x, rows, columns) }, feeds, { y: { shape: [2, 3, 2], values: [1, -1, 2.5, -1, -2, -1, 0, 1, 0.5, 0.5, -1, 2] } });
  });
});

const geometry = (stride: number, padding: number, groups = 1) => ({
  stride: [stride, stride] as const,
  padding: [padding, padding] as const,
  dilation: [1, 1] as const,
  groups,
});

describe('conv2dBackpropInput', () => {
  it('stride 1: each dy value spreads the kernel over the input it saw (two input channels)', async () => {
    const graph = new Graph();
    const dy = graph.input('dy', 'float32', [1, 1, 2, 2]);
    const w = graph.input('w', 'float32', [1, 2, 2, 2]);
    const feeds = { dy: f32([1, 1, 2, 2], [1, 2, 3, 4]), w: f32([1, 2, 2, 2], [1, 10, 100, 1000, 1, 0, 0, 0]) };
    // channel 0: dx[1][1] = 1*1000 + 2*100 + 3*10 + 4*1 = 1234, and so on; channel 1 (kernel [[1,0],[0,0]]) copies dy to the top-left
    const channel0 = [1, 12, 20, 103, 1234, 2040, 300, 3400, 4000];
    const channel1 = [1, 2, 0, 3, 4, 0, 0, 0, 0];
    await expectBothPaths({ dx: conv2dBackpropInput(dy, w, [3, 3], geometry(1, 0)) }, feeds, {
      dx: { shape: [1, 2, 3, 3], values: [...channel0, ...channel1] },
    });
  });

  it('stride 2, padding 1, 3x3 kernel, input 4x4 (needs output padding)', async () => {
    const graph = new Graph();
    const dy = graph.input('dy', 'float32', [1, 1, 2, 2]);
    const w = graph.input('w', 'float32', [1, 1, 3, 3]);
    const feeds = { dy: f32([1, 1, 2, 2], [1, 2, 3, 4]), w: f32([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]) };
    // dy[y][x] * w lands at rows 2y-1.., cols 2x-1.. (cropped to 0..3):
    // row 0: [5, 6+8, 10, 12]; row 1: [8+6, 9+14+9+4, 16+8, 18+12]; row 2: [15, 18+16, 20, 24]; row 3: [24, 27+28, 32, 36]
    const dx = [5, 14, 10, 12, 14, 36, 24, 30, 15, 34, 20, 24, 24, 55, 32, 36];
    await expectBothPaths({ dx: conv2dBackpropInput(dy, w, [4, 4], geometry(2, 1)) }, feeds, { dx: { shape: [1, 1, 4, 4], values: dx } });
  });
});

describe('conv2dBackpropFilter', () => {
  const x3 = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  it('stride 1: dW[i][j] = sum over y, x of x[y+i][x+j] dy[y][x]', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 1, 3, 3]);
    const dy = graph.input('dy', 'float32', [1, 1, 2, 2]);
    const feeds = { x: f32([1, 1, 3, 3], x3), dy: f32([1, 1, 2, 2], [1, 10, 100, 1000]) };
    // dW00 = 1 + 10*2 + 100*4 + 1000*5 = 5421; dW01 = 2 + 30 + 500 + 6000; dW10 = 4 + 50 + 700 + 8000; dW11 = 5 + 60 + 800 + 9000
    await expectBothPaths({ dw: conv2dBackpropFilter(x, dy, [2, 2], geometry(1, 0)) }, feeds, {
      dw: { shape: [1, 1, 2, 2], values: [5421, 6532, 8754, 9865] },
    });
  });

  it('stride 2, padding 1, 3x3 kernel over a 4x4 input', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 1, 4, 4]);
    const dy = graph.input('dy', 'float32', [1, 1, 2, 2]);
    const feeds = {
      x: f32(
        [1, 1, 4, 4],
        Array.from({ length: 16 }, (_, k) => k + 1),
      ),
      dy: f32([1, 1, 2, 2], [1, 2, 3, 4]),
    };
    // With X(r, c) = 4r + c + 1 inside and 0 outside: dW[i][j] = X(i-1,j-1) + 2 X(i-1,j+1) + 3 X(i+1,j-1) + 4 X(i+1,j+1)
    // row 0: [4*6, 3*5 + 4*7, 3*6 + 4*8]; row 1: [2*2 + 4*10, 1 + 6 + 27 + 44, 2 + 8 + 30 + 48]; row 2: [12 + 56, 5 + 14 + 39 + 60, 6 + 16 + 42 + 64]
    const dw = [24, 43, 50, 44, 78, 88, 68, 118, 128];
    await expectBothPaths({ dw: conv2dBackpropFilter(x, dy, [3, 3], geometry(2, 1)) }, feeds, { dw: { shape: [1, 1, 3, 3], values: dw } });
  });

  it('groups 2: each output channel sees only its group of input channels', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 2, 3, 3]);
    const dy = graph.input('dy', 'float32', [1, 2, 2, 2]);
    const feeds = { x: f32([1, 2, 3, 3], [...x3, ...new Array<number>(9).fill(1)]), dy: f32([1, 2, 2, 2], [1, 10, 100, 1000, 1, 2, 3, 4]) };
    // group 0 as above; group 1: ones against [1,2,3,4] sums to 10 at every tap
    await expectBothPaths({ dw: conv2dBackpropFilter(x, dy, [2, 2], geometry(1, 0, 2)) }, feeds, {
      dw: { shape: [2, 1, 2, 2], values: [5421, 6532, 8754, 9865, 10, 10, 10, 10] },
    });
  });
});

describe('batchNorm in training mode', () => {
  // x [N=2, C=2, 1, 2]. Channel 0 holds 1, 3 | 5, 7: mean 4, squared deviations 9+1+1+9 = 20 -> biased var 5, unbiased 20/3.
  // Channel 1 holds 2, 2 | 2, 6: mean 3, squared deviations 1+1+1+9 = 12 -> biased var 3, unbiased 4.
  const xValues = [1, 3, 2, 2, 5, 7, 2, 6];
  const setup = () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [2, 2, 1, 2]);
    const [weight, bias, runningMean, runningVar] = ['weight', 'bias', 'runningMean', 'runningVar'].map((name) => graph.input(name, 'float32', [2])) as [
      SymbolicTensor,
      SymbolicTensor,
      SymbolicTensor,
      SymbolicTensor,
    ];
    const feeds = {
      x: f32([2, 2, 1, 2], xValues),
      weight: f32([2], [1, 2]),
      bias: f32([2], [0, 1]),
      runningMean: f32([2], [0.5, -1]),
      runningVar: f32([2], [2, 1]),
    };
    return { x, parameters: { weight, bias, runningMean, runningVar }, feeds };
  };

  it('updates the running statistics with momentum 0.1 (default) and the unbiased batch variance, as PyTorch', async () => {
    const { x, parameters, feeds } = setup();
    const result = batchNorm(x, parameters, { training: true });
    // output: channel 0 (x - 4) / sqrt(5 + 1e-5); channel 1 2 (x - 3) / sqrt(3 + 1e-5) + 1
    const s0 = Math.sqrt(5 + 1e-5);
    const s1 = Math.sqrt(3 + 1e-5);
    const y = [-3 / s0, -1 / s0, 1 - 2 / s1, 1 - 2 / s1, 1 / s0, 3 / s0, 1 - 2 / s1, 1 + 6 / s1];
    await expectBothPaths({ y: result.output, mean: result.runningMean, variance: result.runningVar }, feeds, {
      y: { shape: [2, 2, 1, 2], values: y },
      // 0.9 * 0.5 + 0.1 * 4; 0.9 * -1 + 0.1 * 3
      mean: { shape: [2], values: [0.85, -0.6] },
      // 0.9 * 2 + 0.1 * 20/3; 0.9 * 1 + 0.1 * 4
      variance: { shape: [2], values: [1.8 + 2 / 3, 1.3] },
    });
  });

  it('uses the momentum it is given', async () => {
    const { x, parameters, feeds } = setup();
    const result = batchNorm(x, parameters, { training: true, momentum: 0.25 });
    await expectBothPaths({ mean: result.runningMean, variance: result.runningVar }, feeds, {
      // 0.75 * 0.5 + 0.25 * 4; 0.75 * -1 + 0.25 * 3
      mean: { shape: [2], values: [1.375, 0] },
      // 0.75 * 2 + 0.25 * 20/3; 0.75 * 1 + 0.25 * 4
      variance: { shape: [2], values: [1.5 + 5 / 3, 1.75] },
    });
  });
});

/**
 * torch.nn.AdaptiveAvgPool2d written out directly: output cell (i, j) is the
 * mean of the input window rows floor(i*H/oh) .. ceil((i+1)*H/oh) - 1 and
 * columns floor(j*W/ow) .. ceil((j+1)*W/ow) - 1.
 */
function pytorchAdaptiveAvgPool(x: HostTensor, oh: number, ow: number): number[] {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const values = x.toArray();
  const out: number[] = [];
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < oh; i++) {
      const [top, bottom] = [Math.floor((i * h) / oh), Math.ceil(((i + 1) * h) / oh)];
      for (let j = 0; j < ow; j++) {
        const [left, right] = [Math.floor((j * w) / ow), Math.ceil(((j + 1) * w) / ow)];
        let total = 0;
        for (let r = top; r < bottom; r++) for (let col = left; col < right; col++) total += values[(plane * h + r) * w + col]!;
        out.push(total / ((bottom - top) * (right - left)));
      }
    }
  }
  return out;
}

describe('adaptiveAvgPool2d with sizes that do not divide', () => {
  it('8 -> 5 and 6 -> 5 by hand: overlapping bins {0,1} {1,2,3} {3,4} {4,5,6} {6,7} and {0,1} {1,2} {2,3} {3,4} {4,5}', async () => {
    const graph = new Graph();
    const row8 = graph.input('row8', 'float32', [1, 1, 1, 8]);
    const column8 = graph.input('column8', 'float32', [1, 1, 8, 1]);
    const row6 = graph.input('row6', 'float32', [1, 1, 1, 6]);
    const ramp = (size: number) => Array.from({ length: size }, (_, k) => k);
    const feeds = { row8: f32([1, 1, 1, 8], ramp(8)), column8: f32([1, 1, 8, 1], ramp(8)), row6: f32([1, 1, 1, 6], ramp(6)) };
    await expectBothPaths({ a: adaptiveAvgPool2d(row8, [1, 5]), b: adaptiveAvgPool2d(column8, [5, 1]), c: adaptiveAvgPool2d(row6, [1, 5]) }, feeds, {
      a: { shape: [1, 1, 1, 5], values: [0.5, 2, 3.5, 5, 6.5] },
      b: { shape: [1, 1, 5, 1], values: [0.5, 2, 3.5, 5, 6.5] },
      c: { shape: [1, 1, 1, 5], values: [0.5, 1.5, 2.5, 3.5, 4.5] },
    });
  });

  it.each([
    { from: [8, 8], to: [5, 5] },
    { from: [6, 6], to: [5, 5] },
    { from: [14, 14], to: [7, 5] },
    { from: [6, 8], to: [5, 5] },
  ])('$from -> $to matches the bin rule computed window by window', async ({ from, to }) => {
    const graph = new Graph();
    const shape = [2, 3, from[0]!, from[1]!];
    const x = graph.input('x', 'float32', shape);
    const feeds = { x: randomTensor(shape, 17, -2, 2) };
    const values = pytorchAdaptiveAvgPool(feeds.x, to[0]!, to[1]!);
    await expectBothPaths({ y: adaptiveAvgPool2d(x, [to[0]!, to[1]!]) }, feeds, { y: { shape: [2, 3, to[0]!, to[1]!], values } }, 2e-6);
  });
});

/**
 * PyTorch's `F.interpolate(mode='bilinear', align_corners=False)` written out
 * as upsample_bilinear2d computes it, in float64: source coordinate
 * (dst + 0.5) * in / out - 0.5 clamped below at 0, i0 = floor(source), the
 * second tap i0 + 1 unless i0 is already the last index, weight source - i0.
 * Independent of the project's kernel (which builds interpolation matrices).
 */
function pytorchBilinear(x: HostTensor, oh: number, ow: number): number[] {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const values = x.toArray();
  const taps = (inSize: number, outSize: number, dst: number) => {
    const source = Math.max(0, ((dst + 0.5) * inSize) / outSize - 0.5);
    const i0 = Math.floor(source);
    return { i0, i1: i0 + (i0 < inSize - 1 ? 1 : 0), lambda: source - i0 };
  };
  const out: number[] = [];
  for (let plane = 0; plane < n * c; plane++) {
    const at = (r: number, col: number) => values[(plane * h + r) * w + col]!;
    for (let i = 0; i < oh; i++) {
      const row = taps(h, oh, i);
      for (let j = 0; j < ow; j++) {
        const column = taps(w, ow, j);
        const top = (1 - column.lambda) * at(row.i0, column.i0) + column.lambda * at(row.i0, column.i1);
        const bottom = (1 - column.lambda) * at(row.i1, column.i0) + column.lambda * at(row.i1, column.i1);
        out.push((1 - row.lambda) * top + row.lambda * bottom);
      }
    }
  }
  return out;
}

describe('resizeBilinear as F.interpolate(bilinear, align_corners=False)', () => {
  it('2 -> 4 along the width: [a, .75a + .25b, .25a + .75b, b] (half-pixel centres, edges clamped)', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 2, 1, 2]);
    // Sources (i + 0.5) / 2 - 0.5 = -0.25 -> 0, 0.25, 0.75, 1.25 (-> last index only).
    // channel 0: a=1, b=5 -> [1, 2, 4, 5]; channel 1: a=-2, b=6 -> [-2, 0, 4, 6]
    await expectBothPaths(
      { y: resizeBilinear(x, [1, 4]) },
      { x: f32([1, 2, 1, 2], [1, 5, -2, 6]) },
      {
        y: { dtype: 'float32', shape: [1, 2, 1, 4], values: [1, 2, 4, 5, -2, 0, 4, 6] },
      },
    );
  });

  it('2 -> 4 along the height, the same weights down a column', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 1, 2, 1]);
    await expectBothPaths({ y: resizeBilinear(x, [4, 1]) }, { x: f32([1, 1, 2, 1], [1, 5]) }, { y: { shape: [1, 1, 4, 1], values: [1, 2, 4, 5] } });
  });

  it('4 -> 2 along the width: [(x0 + x1) / 2, (x2 + x3) / 2] (no antialiasing)', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 1, 1, 4]);
    // Sources (i + 0.5) * 2 - 0.5 = 0.5, 2.5
    await expectBothPaths({ y: resizeBilinear(x, [1, 2]) }, { x: f32([1, 1, 1, 4], [0, 2, 10, 20]) }, { y: { shape: [1, 1, 1, 2], values: [1, 15] } });
  });

  it('4 -> 1 and 3 -> 1 sample the centre: source in / 2 - 0.5 (ONNX pytorch_half_pixel would take 0)', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 1, 3, 4]);
    // Width 4 -> 1: source 0.5 * 4 - 0.5 = 1.5 -> (x1 + x2) / 2; height 3 -> 1: source 1 -> row 1.
    // Rows [0, 2, 10, 20], [1, 3, 5, 7], [100, 100, 100, 100]: row 1 gives (3 + 5) / 2 = 4.
    const feeds = { x: f32([1, 1, 3, 4], [0, 2, 10, 20, 1, 3, 5, 7, 100, 100, 100, 100]) };
    await expectBothPaths({ y: resizeBilinear(x, [1, 1]), column: resizeBilinear(x, [3, 1]) }, feeds, {
      y: { shape: [1, 1, 1, 1], values: [4] },
      column: { shape: [1, 1, 3, 1], values: [6, 4, 100] },
    });
  });

  it('1 -> 4 replicates the single value (along the width, and in 2-D)', async () => {
    const graph = new Graph();
    const row = graph.input('row', 'float32', [1, 1, 1, 1]);
    const pixel = graph.input('pixel', 'float32', [1, 2, 1, 1]);
    await expectBothPaths(
      { wide: resizeBilinear(row, [1, 4]), grid: resizeBilinear(pixel, [4, 4]) },
      { row: f32([1, 1, 1, 1], [3.5]), pixel: f32([1, 2, 1, 1], [-1.25, 7]) },
      {
        wide: { shape: [1, 1, 1, 4], values: [3.5, 3.5, 3.5, 3.5] },
        grid: { shape: [1, 2, 4, 4], values: [...new Array<number>(16).fill(-1.25), ...new Array<number>(16).fill(7)] },
      },
    );
  });

  it('2x2 -> 3x3 by hand: rows and columns take sources 0, 0.5, 1', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 1, 2, 2]);
    // Sources (i + 0.5) * 2/3 - 0.5 = -1/6 -> 0, 0.5, 7/6 (-> last index only).
    // [[1, 2], [3, 10]]: row 0 [1, 1.5, 2]; row 2 [3, 6.5, 10]; row 1 their mean [2, 4, 6] (centre (1+2+3+10)/4)
    await expectBothPaths(
      { y: resizeBilinear(x, [3, 3]) },
      { x: f32([1, 1, 2, 2], [1, 2, 3, 10]) },
      {
        y: { shape: [1, 1, 3, 3], values: [1, 1.5, 2, 2, 4, 6, 3, 6.5, 10] },
      },
    );
  });

  it('the hand-worked formula reproduces the hand cases', () => {
    expect(pytorchBilinear(f32([1, 1, 1, 2], [1, 5]), 1, 4)).toEqual([1, 2, 4, 5]);
    expect(pytorchBilinear(f32([1, 1, 1, 4], [0, 2, 10, 20]), 1, 2)).toEqual([1, 15]);
    expect(pytorchBilinear(f32([1, 1, 2, 2], [1, 2, 3, 10]), 3, 3)).toEqual([1, 1.5, 2, 2, 4, 6, 3, 6.5, 10]);
  });

  it.each([
    { from: [7, 7], to: [4, 4] },
    { from: [3, 5], to: [8, 2] },
    { from: [6, 4], to: [5, 9] },
  ])('$from -> $to matches the upsample_bilinear2d rule computed pixel by pixel', async ({ from, to }) => {
    const graph = new Graph();
    const shape = [2, 2, from[0]!, from[1]!];
    const x = graph.input('x', 'float32', shape);
    const feeds = { x: randomTensor(shape, 29, -2, 2) };
    const values = pytorchBilinear(feeds.x, to[0]!, to[1]!);
    await expectBothPaths({ y: resizeBilinear(x, [to[0]!, to[1]!]) }, feeds, { y: { shape: [2, 2, to[0]!, to[1]!], values } }, 2e-6);
  });
});

describe('avgPool2d with padding (count_include_pad=True, as nn.AvgPool2d by default)', () => {
  // 3x3 kernel, stride 2, padding 1: windows centred on rows and columns 0, 2, 4 (4 is the last output for
  // both 5 and 6 inputs in floor mode). Each window sums its in-bounds elements and divides by 9 always;
  // count_include_pad=False would divide the corner of the 5x5 case by 4 instead (16/4 = 4, not 16/9).
  it('5x5 input, padding reached on both sides: every window divides by 9', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 1, 5, 5]);
    // X(r, c) = 5r + c + 1. Window rows {0,1} {1,2,3} {3,4}, the same columns:
    // (0,0) 1+2+6+7 = 16; (0,1) 2+3+4+7+8+9 = 33; (0,2) 4+5+9+10 = 28;
    // (1,0) 6+7+11+12+16+17 = 69; (1,1) 9 * 13 = 117; (1,2) 9+10+14+15+19+20 = 87;
    // (2,0) 16+17+21+22 = 76; (2,1) 17+18+19+22+23+24 = 123; (2,2) 19+20+24+25 = 88
    const feeds = {
      x: f32(
        [1, 1, 5, 5],
        Array.from({ length: 25 }, (_, k) => k + 1),
      ),
    };
    await expectBothPaths({ y: avgPool2d(x, 3, { stride: 2, padding: 1 }) }, feeds, {
      y: { dtype: 'float32', shape: [1, 1, 3, 3], values: [16, 33, 28, 69, 117, 87, 76, 123, 88].map((total) => total / 9) },
    });
  });

  it('6x6 input: floor mode gives 3x3 (ceil mode would give 4x4), padding only at the top and left', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 2, 6, 6]);
    // X(r, c) = 6r + c + 1. Window rows {0,1} {1,2,3} {3,4,5}, the same columns:
    // (0,0) 1+2+7+8 = 18; (0,1) 2+3+4+8+9+10 = 36; (0,2) 4+5+6+10+11+12 = 48;
    // (1,0) 7+8+13+14+19+20 = 81; full windows average to their centre X(2,2) = 15, X(2,4) = 17;
    // (2,0) 19+20+25+26+31+32 = 153; full windows X(4,2) = 27, X(4,4) = 29. Channel 1 is channel 0 negated.
    const ramp = Array.from({ length: 36 }, (_, k) => k + 1);
    const channel0 = [18 / 9, 36 / 9, 48 / 9, 81 / 9, 15, 17, 153 / 9, 27, 29];
    await expectBothPaths(
      { y: avgPool2d(x, [3, 3], { stride: [2, 2], padding: [1, 1] }) },
      { x: f32([1, 2, 6, 6], [...ramp, ...ramp.map((v) => -v)]) },
      {
        y: { shape: [1, 2, 3, 3], values: [...channel0, ...channel0.map((v) => -v)] },
      },
    );
  });
});
