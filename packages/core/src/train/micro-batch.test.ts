import { batchNorm64, conv1x1_64, expectClose, linear64, randomTensor, relativeError, type Tensor64 } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import {
  adamw,
  BatchNorm2d,
  BuildContext,
  compileModuleTrainStep,
  compileTrainStep,
  Conv2d,
  crossEntropy,
  Graph,
  HostTensor,
  Linear,
  linear,
  Module,
  NonFiniteError,
  RandomGenerator,
  reshape,
  sgd,
  type Optimizer,
  type SymbolicTensor,
} from '../index.js';

const cpu = { executionProviders: ['cpu'] as const };
const BATCH = 12;
const MICRO = 5; // 5 + 5 + 2: uneven on purpose

/** Softmax regression over a named batch axis: logits = x W^T + b, cross-entropy (mean or sum). */
function problem(reduction: 'mean' | 'sum' = 'mean') {
  const graph = new Graph();
  const x = graph.input('x', 'float32', ['batch', 4]);
  const labels = graph.input('labels', 'int64', ['batch']);
  const weight = graph.weight('weight', randomTensor([3, 4], 1));
  const bias = graph.weight('bias', randomTensor([3], 2));
  const logits = linear(x, weight, bias);
  return { x, labels, weight, bias, logits, loss: crossEntropy(logits, labels, reduction) };
}

function batches(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    x: randomTensor([BATCH, 4], 100 + i, -2, 2),
    labels: HostTensor.from(
      'int64',
      [BATCH],
      Array.from({ length: BATCH }, (_, n) => BigInt((n * 7 + i) % 3)),
    ),
  }));
}

/** Float64 gradient of the whole batch's mean cross-entropy of a linear layer (no micro-batches). */
function referenceGradients(weight: number[], bias: number[], x: HostTensor, labels: HostTensor) {
  const xs = x.toArray();
  const ys = labels.toArray();
  const rows = ys.length;
  const gw = new Array<number>(12).fill(0);
  const gb = new Array<number>(3).fill(0);
  for (let n = 0; n < rows; n++) {
    const logits = [0, 1, 2].map((k) => bias[k]! + [0, 1, 2, 3].reduce((s, j) => s + weight[k * 4 + j]! * xs[n * 4 + j]!, 0));
    const top = Math.max(...logits);
    const exps = logits.map((v) => Math.exp(v - top));
    const total = exps.reduce((a, b) => a + b, 0);
    for (let k = 0; k < 3; k++) {
      const delta = (exps[k]! / total - (ys[n] === k ? 1 : 0)) / rows;
      gb[k]! += delta;
      for (let j = 0; j < 4; j++) gw[k * 4 + j]! += delta * xs[n * 4 + j]!;
    }
  }
  return { weight: gw, bias: gb };
}

/** PyTorch's SGD (momentum, weight decay) and AdamW on full batches, in float64: one step per batch. */
function referenceTraining(kind: 'sgd' | 'adamw', steps: number, learningRate: number) {
  const start = problem();
  let w = start.weight.value!.toArray();
  let b = start.bias.value!.toArray();
  const slots = { w: [new Array<number>(12).fill(0), new Array<number>(12).fill(0)], b: [new Array<number>(3).fill(0), new Array<number>(3).fill(0)] };
  batches(steps).forEach((batch, index) => {
    const g = referenceGradients(w, b, batch.x, batch.labels);
    const t = index + 1;
    const update = (p: number[], grad: number[], s: number[][]) =>
      p.map((value, i) => {
        if (kind === 'adamw') {
          const decayed = value * (1 - learningRate * 0.05);
          s[0]![i] = 0.8 * s[0]![i]! + 0.2 * grad[i]!;
          s[1]![i] = 0.9 * s[1]![i]! + 0.1 * grad[i]! ** 2;
          return decayed - (learningRate * (s[0]![i]! / (1 - 0.8 ** t))) / (Math.sqrt(s[1]![i]! / (1 - 0.9 ** t)) + 1e-8);
        }
        s[0]![i] = 0.9 * s[0]![i]! + grad[i]! + 0.01 * value;
        return value - learningRate * s[0]![i]!;
      });
    w = update(w, g.weight, slots.w);
    b = update(b, g.bias, slots.b);
  });
  return { weight: HostTensor.from('float64', [3, 4], w), bias: HostTensor.from('float64', [3], b) };
}

const optimizers: [string, 'sgd' | 'adamw', () => Optimizer][] = [
  ['SGD with momentum and weight decay', 'sgd', () => sgd({ momentum: 0.9, weightDecay: 0.01 })],
  ['AdamW', 'adamw', () => adamw({ betas: [0.8, 0.9], weightDecay: 0.05 })],
];

describe.each(optimizers)('micro-batches, %s', (_label, kind, makeOptimizer) => {
  it('batch 12 as micro-batches 5 + 5 + 2: one optimizer step per batch, the full batch result within 1e-5 over 4 steps', async () => {
    const full = problem();
    const whole = await compileTrainStep({ loss: full.loss, parameters: [full.weight, full.bias], optimizer: makeOptimizer(), runner: cpu });
    const split = problem();
    const micro = await compileTrainStep({
      loss: split.loss,
      parameters: [split.weight, split.bias],
      optimizer: makeOptimizer(),
      microBatch: MICRO,
      outputs: { logits: split.logits },
      runner: cpu,
    });
    expect(micro.microBatch).toBe(MICRO);
    for (const batch of batches(4)) {
      const a = await whole.run(batch, { learningRate: 0.1 });
      const b = await micro.run(batch, { learningRate: 0.1 });
      expect(b.forwardPasses).toBe(3);
      expect(b.losses).toHaveLength(1);
      // The weighted micro-batch losses are the whole batch's mean loss.
      expect(Math.abs(b.losses[0]! - a.losses[0]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(a.losses[0]!)));
      expect(b.outputs.logits!.shape).toEqual([BATCH, 3]);
    }
    expect(micro.stepCount).toBe(4);
    const expected = referenceTraining(kind, 4, 0.1);
    for (const name of ['weight', 'bias'] as const) {
      expect(relativeError(micro.parameters()[name]!, whole.parameters()[name]!, 0), name).toBeLessThan(1e-5);
      expectClose(micro.parameters()[name]!, expected[name], 1e-5, name);
    }
    // The optimizer state moved once per batch: the momentum buffer / first moment matches the full-batch one.
    const slot = kind === 'sgd' ? 'train/weight/momentum_buffer' : 'train/weight/exp_avg';
    expect(relativeError(micro.state().get(slot)!, whole.state().get(slot)!, 0)).toBeLessThan(1e-5);
    await whole.release();
    await micro.release();
  });
});

describe('micro-batch options', () => {
  it("a micro-batch at least as large as the batch is one pass; lossReduction 'sum' adds gradients unweighted", async () => {
    const reference = referenceTraining('sgd', 2, 0.1);
    const p = problem();
    const step = await compileTrainStep({
      loss: p.loss,
      parameters: [p.weight, p.bias],
      optimizer: sgd({ momentum: 0.9, weightDecay: 0.01 }),
      microBatch: 64,
      runner: cpu,
    });
    for (const batch of batches(2)) expect((await step.run(batch, { learningRate: 0.1 })).forwardPasses).toBe(1);
    expectClose(step.parameters().weight!, reference.weight, 1e-5, 'weight');
    await step.release();
    // A summed loss at lr/12 takes the same steps as the mean loss at lr (weight decay scaled to match).
    const summed = problem('sum');
    const sumStep = await compileTrainStep({
      loss: summed.loss,
      parameters: [summed.weight, summed.bias],
      optimizer: sgd({ momentum: 0.9, weightDecay: 0.01 * BATCH }),
      microBatch: MICRO,
      lossReduction: 'sum',
      runner: cpu,
    });
    for (const batch of batches(2)) await sumStep.run(batch, { learningRate: 0.1 / BATCH });
    expectClose(sumStep.parameters().weight!, reference.weight, 1e-5, 'weight (sum)');
    await sumStep.release();
  });

  it('refuses bad sizes, Loop steps, static batch axes and per-batch outputs; a non-finite micro-batch loss changes nothing', async () => {
    const p = problem();
    const base = { loss: p.loss, parameters: [p.weight, p.bias], optimizer: sgd(), runner: cpu };
    for (const size of [0, -2, 2.5, Number.NaN])
      await expect(compileTrainStep({ ...base, microBatch: size })).rejects.toThrow(`expected microBatch to be a positive integer; found ${size}`);
    await expect(compileTrainStep({ ...base, microBatch: 4, stepsPerRun: 2 })).rejects.toThrow(/microBatch needs stepsPerRun 1/);
    await expect(compileTrainStep({ ...base, microBatch: 4, outputs: { mean: p.loss } })).rejects.toThrow(/their first axis must be 'batch'; found 'mean'/);
    const graph = new Graph();
    const x = graph.input('x', 'float32', [6, 4]);
    const weight = graph.weight('w', randomTensor([3, 4], 1));
    const loss = crossEntropy(linear(x, weight), graph.input('labels', 'int64', [6]));
    await expect(compileTrainStep({ loss, parameters: [weight], optimizer: sgd(), microBatch: 2 })).rejects.toThrow(
      /must be one named size \(such as 'batch'\); found 'x' \[6, 4\], 'labels' \[6\]/,
    );

    const step = await compileTrainStep({ ...base, optimizer: sgd({ momentum: 0.9 }), microBatch: MICRO });
    const [good] = batches(1);
    await step.run(good!, { learningRate: 0.1 });
    const before = step.state();
    const poisoned = good!.x.toArray();
    poisoned[11 * 4] = Number.NaN; // row 11: the third micro-batch
    const error = await step.run({ x: HostTensor.from('float32', [BATCH, 4], poisoned), labels: good!.labels }, { learningRate: 0.1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect((error as Error).message).toMatch(/loss of step 2 is NaN \(micro-batch 3, examples 10\.\.11\)/);
    for (const [name, tensor] of step.state()) expect(tensor.toArray(), name).toEqual(before.get(name)!.toArray());
    await expect(step.run({ x: good!.x, labels: good!.labels.slice([0], [5]) }, { learningRate: 0.1 })).rejects.toThrow(
      /every data input must have the batch's 12 rows \('x'\); found 'labels' with 5/,
    );
    await expect(step.run({ x: good!.x }, { learningRate: 0.1 })).rejects.toThrow(/missing input 'labels'/);
    await step.release();
  });
});

/** 1x1 conv (2 -> 3 channels) -> BatchNorm2d -> flatten -> linear (3*2*2 -> 3). */
class NormNet extends Module {
  readonly conv: Conv2d;
  readonly norm: BatchNorm2d;
  readonly classifier: Linear;
  constructor(seed: number) {
    super();
    const generator = new RandomGenerator(seed);
    this.conv = this.registerModule('conv', new Conv2d(2, 3, generator, { kernelSize: 1 }));
    this.norm = this.registerModule('norm', new BatchNorm2d(3));
    this.classifier = this.registerModule('classifier', new Linear(12, 3, generator));
  }
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return this.classifier.forward(context, reshape(this.norm.forward(context, this.conv.forward(context, x)), [x.shape[0]!, -1]));
  }
}

/** The net with non-default BN affine weights and running statistics, so that every term shows. */
function normNet(): NormNet {
  const net = new NormNet(3);
  net.norm.weight.value = HostTensor.from('float32', [3], [1.5, 0.5, -0.75]);
  net.norm.bias.value = HostTensor.from('float32', [3], [0.1, -0.2, 0.3]);
  net.norm.runningMean.value = HostTensor.from('float32', [3], [0.5, -1, 2]);
  net.norm.runningVar.value = HostTensor.from('float32', [3], [2, 0.5, 1.5]);
  return net;
}

type Weights64 = Record<string, number[]>;

/** The net's forward in float64 (BatchNorm in train mode) and its mean cross-entropy; PyTorch's semantics written out. */
function normNet64(w: Weights64, running: { mean: number[]; variance: number[] }, x: Tensor64, labels: number[]) {
  const conv = conv1x1_64(x, w['conv.weight']!, w['conv.bias']!, 3);
  const normed = batchNorm64(conv, { weight: w['norm.weight']!, bias: w['norm.bias']!, runningMean: running.mean, runningVar: running.variance }, 'train');
  const logits = linear64({ shape: [labels.length, 12], data: normed.output.data }, w['classifier.weight']!, w['classifier.bias']!, 3);
  let loss = 0;
  labels.forEach((label, n) => {
    const row = [0, 1, 2].map((k) => logits.data[n * 3 + k]!);
    const top = Math.max(...row);
    loss += top + Math.log(row.reduce((s, v) => s + Math.exp(v - top), 0)) - row[label]!;
  });
  return { loss: loss / labels.length, running: { mean: normed.runningMean, variance: normed.runningVar } };
}

/** Central finite differences of a float64 loss with respect to every weight. */
function gradient64(w: Weights64, loss: (w: Weights64) => number): Weights64 {
  const out: Weights64 = {};
  for (const [name, values] of Object.entries(w)) {
    out[name] = values.map((_, i) => {
      const shifted = (delta: number) => loss({ ...w, [name]: values.map((v, j) => (j === i ? v + delta : v)) });
      return (shifted(1e-6) - shifted(-1e-6)) / 2e-6;
    });
  }
  return out;
}

describe('micro-batches with BatchNorm', () => {
  it("normalizes each micro-batch with its own statistics and updates the running statistics once per micro-batch (PyTorch's semantics in float64)", async () => {
    const net = normNet();
    const initial = new Map([...net.stateDict()].map(([name, tensor]) => [name, tensor.toArray()]));
    const graph = new Graph();
    const context = new BuildContext(graph, net, { mode: 'train' });
    const x = graph.input('x', 'float32', ['batch', 2, 2, 2]);
    const logits = net.forward(context, x);
    const step = await compileModuleTrainStep({
      context,
      loss: crossEntropy(logits, graph.input('labels', 'int64', ['batch'])),
      optimizer: sgd({ momentum: 0.9 }),
      microBatch: MICRO,
      runner: cpu,
    });
    const data = [0, 1].map((i) => ({
      x: randomTensor([BATCH, 2, 2, 2], 40 + i, -2, 2),
      labels: Array.from({ length: BATCH }, (_, n) => (n * 5 + i) % 3),
    }));
    for (const batch of data) {
      await step.run({ x: batch.x, labels: HostTensor.from('int64', [BATCH], batch.labels.map(BigInt)) }, { learningRate: 0.2 });
    }
    step.syncModules();

    // Float64: per batch, each micro-batch's gradient at the same weights, weighted by its share; one SGD step.
    const parameterNames = ['conv.weight', 'conv.bias', 'norm.weight', 'norm.bias', 'classifier.weight', 'classifier.bias'];
    let w: Weights64 = Object.fromEntries(parameterNames.map((name) => [name, initial.get(name)!]));
    let running = { mean: initial.get('norm.running_mean')!, variance: initial.get('norm.running_var')! };
    const momentum: Weights64 = Object.fromEntries(parameterNames.map((name) => [name, w[name]!.map(() => 0)]));
    for (const batch of data) {
      const xs = toRows(batch.x);
      const total: Weights64 = Object.fromEntries(parameterNames.map((name) => [name, w[name]!.map(() => 0)]));
      for (let start = 0; start < BATCH; start += MICRO) {
        const end = Math.min(start + MICRO, BATCH);
        const slice: Tensor64 = { shape: [end - start, 2, 2, 2], data: xs.subarray(start * 8, end * 8) };
        const labels = batch.labels.slice(start, end);
        const g = gradient64(w, (v) => normNet64(v, running, slice, labels).loss);
        for (const name of parameterNames) total[name] = total[name]!.map((value, i) => value + ((end - start) / BATCH) * g[name]![i]!);
        running = normNet64(w, running, slice, labels).running;
      }
      const next: Weights64 = {};
      for (const name of parameterNames) {
        momentum[name] = momentum[name]!.map((m, i) => 0.9 * m + total[name]![i]!);
        next[name] = w[name]!.map((value, i) => value - 0.2 * momentum[name]![i]!);
      }
      w = next;
    }
    const trained = net.stateDict();
    for (const name of parameterNames) {
      const expected = HostTensor.from('float64', trained.get(name)!.shape, w[name]!);
      expect(relativeError(trained.get(name)!, expected, 0), name).toBeLessThan(1e-5);
    }
    expect(relativeError(trained.get('norm.running_mean')!, HostTensor.from('float64', [3], running.mean), 0)).toBeLessThan(1e-5);
    expect(relativeError(trained.get('norm.running_var')!, HostTensor.from('float64', [3], running.variance), 0)).toBeLessThan(1e-5);
    // num_batches_tracked counts forward passes: 3 micro-batches in each of 2 steps.
    expect(trained.get('norm.num_batches_tracked')!.toArray()).toEqual([6]);
    expect(step.stepCount).toBe(2);
    // A control: whole-batch statistics give other weights and running statistics.
    const wholeNet = normNet();
    const g2 = new Graph();
    const c2 = new BuildContext(g2, wholeNet, { mode: 'train' });
    const whole = await compileModuleTrainStep({
      context: c2,
      loss: crossEntropy(wholeNet.forward(c2, g2.input('x', 'float32', ['batch', 2, 2, 2])), g2.input('labels', 'int64', ['batch'])),
      optimizer: sgd({ momentum: 0.9 }),
      runner: cpu,
    });
    for (const batch of data) await whole.run({ x: batch.x, labels: HostTensor.from('int64', [BATCH], batch.labels.map(BigInt)) }, { learningRate: 0.2 });
    whole.syncModules();
    expect(relativeError(wholeNet.stateDict().get('conv.weight')!, HostTensor.from('float64', [3, 2, 1, 1], w['conv.weight']!), 0)).toBeGreaterThan(1e-3);
    expect(relativeError(wholeNet.stateDict().get('norm.running_var')!, HostTensor.from('float64', [3], running.variance), 0)).toBeGreaterThan(1e-3);
    await step.release();
    await whole.release();
  });
});

function toRows(tensor: HostTensor): Float64Array {
  return Float64Array.from(tensor.toArray());
}
