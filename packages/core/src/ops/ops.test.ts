/**
 * The backend-agnostic op suite. For every op:
 * 1. its ONNX lowering, run by ONNX Runtime in float32, matches its reference
 *    kernel run in float64;
 * 2. its gradient, evaluated with the reference kernels in float64, matches
 *    central finite differences of the forward reference kernels;
 * 3. the same gradient graph, lowered to ONNX, matches the float64 values.
 */
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d,
  add,
  avgPool2d,
  batchNorm,
  broadcastTo,
  cast,
  concat,
  conv2d,
  cos,
  crossEntropy,
  div,
  erf,
  evaluateReference,
  exp,
  gather,
  gelu,
  gradients,
  Graph,
  groupNorm,
  HostTensor,
  layerNorm,
  linear,
  log,
  logSoftmax,
  matmul,
  max,
  mean,
  mul,
  neg,
  pad,
  pow,
  relu,
  reshape,
  resizeBilinear,
  scaledDotProductAttention,
  sigmoid,
  silu,
  sin,
  slice,
  softmax,
  sqrt,
  sub,
  sum,
  tanh,
  transpose,
  upsampleNearest2x,
  type SymbolicTensor,
} from '../index.js';
import { expectClose, randomTensor, runOnnx, seededRandom } from '@diffssl/testing';

interface OpCase {
  name: string;
  /** Input shapes (and value range) by name; all are differentiated unless listed in `constantInputs`. */
  inputs: Record<string, { shape: number[]; low?: number; high?: number; dtype?: 'int64'; values?: number[] }>;
  build: (inputs: Record<string, SymbolicTensor>, graph: Graph) => SymbolicTensor;
  /** Named dimensions to declare instead of static sizes: input name -> axis -> name. */
  named?: Record<string, Record<number, string>>;
  noGradient?: boolean;
  /** Float inputs that are not differentiated (buffers such as running statistics). */
  constantInputs?: string[];
  /** The gradient is defined but finite differences cannot see it (rounding steps): skip that comparison. */
  skipFiniteDifferences?: boolean;
  forwardTolerance?: number;
  /** Tolerance of the ONNX (float32) gradient against the float64 reference (default 5e-5). */
  gradientTolerance?: number;
}

const cases: OpCase[] = [
  { name: 'add (broadcast)', inputs: { a: { shape: [2, 3, 4] }, b: { shape: [3, 1] } }, build: ({ a, b }) => add(a!, b!) },
  { name: 'sub (broadcast)', inputs: { a: { shape: [4] }, b: { shape: [2, 4] } }, build: ({ a, b }) => sub(a!, b!) },
  { name: 'mul (broadcast)', inputs: { a: { shape: [2, 1, 4] }, b: { shape: [3, 1] } }, build: ({ a, b }) => mul(a!, b!) },
  { name: 'div', inputs: { a: { shape: [2, 3] }, b: { shape: [2, 3], low: 0.5, high: 2 } }, build: ({ a, b }) => div(a!, b!) },
  { name: 'pow', inputs: { a: { shape: [2, 3], low: 0.5, high: 2 }, b: { shape: [3], low: -1, high: 2 } }, build: ({ a, b }) => pow(a!, b!) },
  { name: 'neg', inputs: { x: { shape: [5] } }, build: ({ x }) => neg(x!) },
  { name: 'exp', inputs: { x: { shape: [5] } }, build: ({ x }) => exp(x!) },
  { name: 'log', inputs: { x: { shape: [5], low: 0.2, high: 3 } }, build: ({ x }) => log(x!) },
  { name: 'sqrt', inputs: { x: { shape: [5], low: 0.2, high: 3 } }, build: ({ x }) => sqrt(x!) },
  { name: 'sigmoid', inputs: { x: { shape: [6], low: -4, high: 4 } }, build: ({ x }) => sigmoid(x!) },
  { name: 'silu', inputs: { x: { shape: [6], low: -4, high: 4 } }, build: ({ x }) => silu(x!) },
  { name: 'relu', inputs: { x: { shape: [8] } }, build: ({ x }) => relu(x!) },
  { name: 'tanh', inputs: { x: { shape: [6], low: -3, high: 3 } }, build: ({ x }) => tanh(x!) },
  { name: 'gelu (erf)', inputs: { x: { shape: [8], low: -4, high: 4 } }, build: ({ x }) => gelu(x!) },
  { name: 'erf', inputs: { x: { shape: [8], low: -3.5, high: 3.5 } }, build: ({ x }) => erf(x!) },
  { name: 'sin', inputs: { x: { shape: [5], low: -3, high: 3 } }, build: ({ x }) => sin(x!) },
  { name: 'cos', inputs: { x: { shape: [5], low: -3, high: 3 } }, build: ({ x }) => cos(x!) },
  { name: 'matmul (batched, broadcast)', inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4, 5] } }, build: ({ a, b }) => matmul(a!, b!) },
  { name: 'matmul (rank-4 a, one shared b)', inputs: { a: { shape: [2, 2, 3, 4] }, b: { shape: [4, 5] } }, build: ({ a, b }) => matmul(a!, b!) },
  {
    name: 'linear (named batch, rank 3)',
    inputs: { x: { shape: [3, 2, 4] }, w: { shape: [5, 4] } },
    named: { x: { 0: 'batch' } },
    build: ({ x, w }) => linear(x!, w!),
  },
  { name: 'linear', inputs: { x: { shape: [3, 2, 4] }, w: { shape: [5, 4] }, b: { shape: [5] } }, build: ({ x, w, b }) => linear(x!, w!, b!) },
  {
    name: 'conv2d 3x3 pad 1',
    inputs: { x: { shape: [2, 3, 5, 5] }, w: { shape: [4, 3, 3, 3] }, b: { shape: [4] } },
    build: ({ x, w, b }) => conv2d(x!, w!, b!, { padding: 1 }),
  },
  {
    name: 'conv2d stride 2, dilation 2, uneven',
    inputs: { x: { shape: [1, 2, 8, 7] }, w: { shape: [3, 2, 3, 2] } },
    build: ({ x, w }) => conv2d(x!, w!, undefined, { stride: 2, padding: [1, 0], dilation: [2, 1] }),
  },
  {
    name: 'conv2d groups 2',
    inputs: { x: { shape: [2, 4, 5, 5] }, w: { shape: [6, 2, 3, 3] } },
    build: ({ x, w }) => conv2d(x!, w!, undefined, { padding: 1, groups: 2 }),
  },
  {
    name: 'conv2d 1x1 (named batch)',
    inputs: { x: { shape: [3, 4, 2, 2] }, w: { shape: [5, 4, 1, 1] } },
    named: { x: { 0: 'batch' } },
    build: ({ x, w }) => conv2d(x!, w!),
  },
  {
    name: 'conv2d 1x1 groups 2 (the pointwise weight-gradient lowering)',
    inputs: { x: { shape: [2, 4, 3, 2] }, w: { shape: [6, 2, 1, 1] }, b: { shape: [6] } },
    build: ({ x, w, b }) => conv2d(x!, w!, b!, { groups: 2 }),
  },
  { name: 'avgPool2d 2x2', inputs: { x: { shape: [2, 3, 6, 5] } }, build: ({ x }) => avgPool2d(x!, 2) },
  { name: 'avgPool2d 3x3 stride 2 pad 1', inputs: { x: { shape: [1, 2, 7, 7] } }, build: ({ x }) => avgPool2d(x!, 3, { stride: 2, padding: 1 }) },
  { name: 'adaptiveAvgPool2d 7->2 (overlapping bins)', inputs: { x: { shape: [2, 3, 7, 7] } }, build: ({ x }) => adaptiveAvgPool2d(x!, 2) },
  { name: 'adaptiveAvgPool2d 8->4 (even)', inputs: { x: { shape: [2, 2, 8, 8] } }, build: ({ x }) => adaptiveAvgPool2d(x!, 4) },
  {
    name: 'adaptiveAvgPool2d 14->7 named batch',
    inputs: { x: { shape: [2, 2, 14, 14] } },
    named: { x: { 0: 'batch' } },
    build: ({ x }) => adaptiveAvgPool2d(x!, [7, 5]),
  },
  { name: 'upsampleNearest2x', inputs: { x: { shape: [2, 3, 3, 4] } }, build: ({ x }) => upsampleNearest2x(x!) },
  { name: 'resizeBilinear up 3->8', inputs: { x: { shape: [2, 2, 3, 3] } }, build: ({ x }) => resizeBilinear(x!, [8, 5]) },
  { name: 'resizeBilinear 1->4', inputs: { x: { shape: [1, 2, 1, 1] } }, build: ({ x }) => resizeBilinear(x!, [4, 4]) },
  { name: 'resizeBilinear down 7->3', inputs: { x: { shape: [1, 2, 7, 6] } }, build: ({ x }) => resizeBilinear(x!, [3, 4]) },
  {
    name: 'groupNorm 4 groups',
    inputs: { x: { shape: [2, 8, 3, 3], low: -2, high: 3 }, w: { shape: [8] }, b: { shape: [8] } },
    named: { x: { 0: 'batch' } },
    build: ({ x, w, b }) => groupNorm(x!, w!, b!, { groups: 4 }),
  },
  {
    name: 'groupNorm tiny groups (sequential moments)',
    inputs: { x: { shape: [3, 8, 1, 1], low: -2, high: 3 }, w: { shape: [8] }, b: { shape: [8] } },
    build: ({ x, w, b }) => groupNorm(x!, w!, b!, { groups: 4 }),
    // Two values per group: the gradient divides by their spread, so ONNX Runtime's float32 rounding is amplified where two values lie close.
    gradientTolerance: 1e-4,
  },
  {
    name: 'layerNorm over [C,s,s]',
    inputs: { x: { shape: [2, 3, 2, 2], low: -2, high: 3 }, w: { shape: [3, 2, 2] }, b: { shape: [3, 2, 2] } },
    build: ({ x, w, b }) => layerNorm(x!, w!, b!, { axis: 1 }),
  },
  { name: 'layerNorm last axis, no affine', inputs: { x: { shape: [3, 5] } }, build: ({ x }) => layerNorm(x!) },
  {
    name: 'batchNorm eval',
    inputs: { x: { shape: [2, 3, 2, 2] }, w: { shape: [3] }, b: { shape: [3] }, m: { shape: [3] }, v: { shape: [3], low: 0.5, high: 2 } },
    build: ({ x, w, b, m, v }) => batchNorm(x!, { weight: w!, bias: b!, runningMean: m!, runningVar: v! }),
    constantInputs: ['m', 'v'],
  },
  {
    name: 'batchNorm training',
    inputs: { x: { shape: [3, 2, 2, 2], low: -2, high: 3 }, w: { shape: [2] }, b: { shape: [2] }, m: { shape: [2] }, v: { shape: [2], low: 0.5, high: 2 } },
    build: ({ x, w, b, m, v }) => batchNorm(x!, { weight: w!, bias: b!, runningMean: m!, runningVar: v! }, { training: true, momentum: 0.1 }).output,
    constantInputs: ['m', 'v'],
  },
  { name: 'softmax', inputs: { x: { shape: [2, 5], low: -3, high: 3 } }, build: ({ x }) => softmax(x!) },
  {
    name: 'scaledDotProductAttention (heads axis, Nq != Nk, dv != d)',
    inputs: { q: { shape: [2, 2, 3, 4] }, k: { shape: [2, 2, 5, 4] }, v: { shape: [2, 2, 5, 3] } },
    build: ({ q, k, v }) => scaledDotProductAttention(q!, k!, v!, 0.5),
  },
  {
    name: 'scaledDotProductAttention (rank 2)',
    inputs: { q: { shape: [3, 4] }, k: { shape: [5, 4] }, v: { shape: [5, 2] } },
    build: ({ q, k, v }) => scaledDotProductAttention(q!, k!, v!, 0.7),
  },
  {
    name: 'scaledDotProductAttention (named batch)',
    inputs: { q: { shape: [3, 4, 2] }, k: { shape: [3, 4, 2] }, v: { shape: [3, 4, 2] } },
    named: { q: { 0: 'batch' }, k: { 0: 'batch' }, v: { 0: 'batch' } },
    build: ({ q, k, v }) => scaledDotProductAttention(q!, k!, v!, 2 ** -0.5),
  },
  {
    name: 'gelu read by a later gradient (matmul of gelu: recomputed in the backward pass)',
    inputs: { x: { shape: [3, 4], low: -3, high: 3 }, w: { shape: [4, 2] } },
    build: ({ x, w }) => matmul(gelu(x!), w!),
  },
  { name: 'softmax axis 0', inputs: { x: { shape: [3, 2], low: -3, high: 3 } }, build: ({ x }) => softmax(x!, 0) },
  { name: 'logSoftmax', inputs: { x: { shape: [2, 5], low: -3, high: 3 } }, build: ({ x }) => logSoftmax(x!) },
  {
    name: 'crossEntropy mean',
    inputs: { x: { shape: [4, 5], low: -3, high: 3 }, labels: { shape: [4], dtype: 'int64', values: [0, 4, 2, 2] } },
    named: { x: { 0: 'batch' }, labels: { 0: 'batch' } },
    build: ({ x, labels }) => crossEntropy(x!, labels!),
  },
  {
    name: 'crossEntropy none',
    inputs: { x: { shape: [3, 4], low: -3, high: 3 }, labels: { shape: [3], dtype: 'int64', values: [3, 0, 1] } },
    build: ({ x, labels }) => crossEntropy(x!, labels!, 'none'),
  },
  { name: 'reshape with -1 (named)', inputs: { x: { shape: [2, 3, 4] } }, named: { x: { 0: 'batch' } }, build: ({ x }) => reshape(x!, [-1, 4]) },
  { name: 'transpose', inputs: { x: { shape: [2, 3, 4] } }, build: ({ x }) => transpose(x!, [2, 0, 1]) },
  { name: 'concat', inputs: { a: { shape: [2, 3] }, b: { shape: [2, 1] } }, build: ({ a, b }) => concat([a!, b!, a!], 1) },
  { name: 'slice', inputs: { x: { shape: [3, 5] } }, build: ({ x }) => slice(x!, [1, 0], [3, 4]) },
  { name: 'pad', inputs: { x: { shape: [2, 3] } }, build: ({ x }) => pad(x!, [1, 0], [0, 2]) },
  { name: 'gather (repeated indices)', inputs: { x: { shape: [4, 3] } }, build: ({ x }) => gather(x!, [2, 0, 2], 0) },
  { name: 'gather axis 1', inputs: { x: { shape: [2, 4] } }, build: ({ x }) => gather(x!, [3, 1], 1) },
  {
    name: 'broadcastTo (named)',
    inputs: { x: { shape: [1, 3] }, like: { shape: [2, 3] } },
    named: { like: { 0: 'batch' } },
    build: ({ x, like }) => add(broadcastTo(x!, like!.shape), like!),
  },
  { name: 'sum axes keepDims', inputs: { x: { shape: [2, 3, 4] } }, build: ({ x }) => sum(x!, [0, 2], true) },
  { name: 'mean (named batch)', inputs: { x: { shape: [3, 4] } }, named: { x: { 0: 'batch' } }, build: ({ x }) => mean(x!, 0) },
  { name: 'max', inputs: { x: { shape: [3, 4] } }, build: ({ x }) => max(x!, 1) },
  {
    name: 'cast float16 round trip',
    inputs: { x: { shape: [6] } },
    build: ({ x }) => cast(cast(x!, 'float16'), 'float32'),
    forwardTolerance: 1e-4,
    skipFiniteDifferences: true,
  },
];

function makeInputs(testCase: OpCase, seed: number) {
  const graph = new Graph();
  const symbols: Record<string, SymbolicTensor> = {};
  const feeds: Record<string, HostTensor> = {};
  Object.entries(testCase.inputs).forEach(([name, spec], index) => {
    const shape = spec.shape.map((d, axis) => testCase.named?.[name]?.[axis] ?? d);
    if (spec.dtype === 'int64') {
      symbols[name] = graph.input(name, 'int64', shape);
      feeds[name] = HostTensor.from(
        'int64',
        spec.shape,
        spec.values!.map((v) => BigInt(v)),
      );
    } else {
      symbols[name] = graph.input(name, 'float32', shape);
      feeds[name] = randomTensor(spec.shape, seed + index * 101, spec.low ?? -1, spec.high ?? 1);
    }
  });
  return { graph, symbols, feeds };
}

/** Central differences of a scalar reference loss in float64 for sampled elements. */
function finiteDifferences(loss: SymbolicTensor, feeds: Record<string, HostTensor>, name: string, samples: number[]): number[] {
  const base = feeds[name]!.cast('float64');
  const step = 1e-6;
  return samples.map((index) => {
    const evaluateAt = (delta: number) => {
      const perturbed = HostTensor.from('float64', base.shape, base.data.slice());
      perturbed.data[index]! += delta;
      return evaluateReference([loss], { ...feeds, [name]: perturbed })[0]!.get();
    };
    return (evaluateAt(step) - evaluateAt(-step)) / (2 * step);
  });
}

describe.each(cases)('$name', (testCase) => {
  it('ONNX lowering matches the reference kernel', async () => {
    const { graph, symbols, feeds } = makeInputs(testCase, 7);
    const output = testCase.build(symbols, graph);
    const { y } = await runOnnx({ y: output }, feeds);
    const [expected] = evaluateReference([output], feeds);
    expectClose(y!, expected!, testCase.forwardTolerance ?? 2e-5, 'forward');
  });

  it.skipIf(testCase.noGradient)('gradient matches finite differences and its ONNX lowering', async () => {
    const { graph, symbols, feeds } = makeInputs(testCase, 11);
    const output = testCase.build(symbols, graph);
    // A random projection makes every output element matter to the loss.
    const [forward] = evaluateReference([output], feeds);
    const projection = graph.input('projection', 'float32', output.shape);
    feeds.projection = randomTensor(forward!.shape, 99);
    const loss = sum(mul(output, projection));
    const wrtNames = Object.keys(testCase.inputs).filter((name) => testCase.inputs[name]!.dtype !== 'int64' && !testCase.constantInputs?.includes(name));
    const grads = gradients(
      loss,
      wrtNames.map((name) => symbols[name]!),
    );
    const referenceGrads = evaluateReference(grads, feeds);
    const random = seededRandom(5);
    wrtNames.forEach((name, i) => {
      if (testCase.skipFiniteDifferences) return;
      const size = feeds[name]!.size;
      const samples = size <= 24 ? Array.from({ length: size }, (_, k) => k) : Array.from({ length: 24 }, () => Math.floor(random() * size));
      const numeric = finiteDifferences(loss, feeds, name, samples);
      const analytic = samples.map((k) => referenceGrads[i]!.toArray()[k]!);
      const scale = Math.max(1, ...numeric.map(Math.abs));
      numeric.forEach((value, k) =>
        expect(Math.abs(analytic[k]! - value) / scale, `${name}[${samples[k]}]: analytic ${analytic[k]} vs numeric ${value}`).toBeLessThan(1e-6),
      );
    });
    const onnx = await runOnnx(Object.fromEntries(grads.map((g, i) => [`d_${wrtNames[i]}`, g])), feeds);
    wrtNames.forEach((name, i) => expectClose(onnx[`d_${name}`]!, referenceGrads[i]!, testCase.gradientTolerance ?? 5e-5, `gradient of ${name}`));
  });
});
