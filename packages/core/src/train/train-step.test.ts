import { describe, expect, it } from 'vitest';
import {
  adamw,
  compileTrainStep,
  ConfigError,
  createRunner,
  crossEntropy,
  Graph,
  HostTensor,
  linear,
  NonFiniteError,
  sgd,
  type Optimizer,
  type RunnerOptions,
} from '../index.js';
import { compileTrainStepWith } from './train-step.js';
import { expectClose, randomTensor } from '@diffssl/testing';

/** A tiny softmax regression: logits = x W^T + b, mean cross-entropy. */
function problem(seed: number) {
  const graph = new Graph();
  const x = graph.input('x', 'float32', [6, 4]);
  const labels = graph.input('labels', 'int64', [6]);
  const weight = graph.weight('weight', randomTensor([3, 4], seed));
  const bias = graph.weight('bias', randomTensor([3], seed + 1));
  const logits = linear(x, weight, bias);
  return { graph, x, labels, weight, bias, logits, loss: crossEntropy(logits, labels) };
}

function batches(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    x: randomTensor([6, 4], 100 + i, -2, 2),
    labels: HostTensor.from(
      'int64',
      [6],
      [0, 1, 2, 0, 1, 2].map((v) => BigInt((v + i) % 3)),
    ),
  }));
}

/** Independent float64 computation of the gradient of mean cross-entropy of a linear layer. */
function referenceGradients(weight: number[], bias: number[], x: HostTensor, labels: HostTensor): { weight: number[]; bias: number[] } {
  const xs = x.toArray();
  const ys = labels.toArray();
  const gw = new Array<number>(12).fill(0);
  const gb = new Array<number>(3).fill(0);
  for (let n = 0; n < 6; n++) {
    const logits = [0, 1, 2].map((k) => bias[k]! + [0, 1, 2, 3].reduce((s, j) => s + weight[k * 4 + j]! * xs[n * 4 + j]!, 0));
    const top = Math.max(...logits);
    const exps = logits.map((v) => Math.exp(v - top));
    const total = exps.reduce((a, b) => a + b, 0);
    for (let k = 0; k < 3; k++) {
      const delta = (exps[k]! / total - (ys[n] === k ? 1 : 0)) / 6;
      gb[k]! += delta;
      for (let j = 0; j < 4; j++) gw[k * 4 + j]! += delta * xs[n * 4 + j]!;
    }
  }
  return { weight: gw, bias: gb };
}

/** PyTorch's update rules, written out in float64. */
function referenceTraining(kind: 'sgd' | 'nesterov' | 'adamw', steps: number, learningRate: number) {
  const start = problem(1);
  let w = start.weight.value!.toArray();
  let b = start.bias.value!.toArray();
  const state = { w: [new Array<number>(12).fill(0), new Array<number>(12).fill(0)], b: [new Array<number>(3).fill(0), new Array<number>(3).fill(0)] };
  batches(steps).forEach((batch, index) => {
    const g = referenceGradients(w, b, batch.x, batch.labels);
    const t = index + 1;
    const update = (p: number[], grad: number[], slots: number[][]) =>
      p.map((value, i) => {
        if (kind === 'adamw') {
          const decayed = value * (1 - learningRate * 0.05);
          slots[0]![i] = 0.8 * slots[0]![i]! + 0.2 * grad[i]!;
          slots[1]![i] = 0.9 * slots[1]![i]! + 0.1 * grad[i]! ** 2;
          const mHat = slots[0]![i]! / (1 - 0.8 ** t);
          const vHat = slots[1]![i]! / (1 - 0.9 ** t);
          return decayed - (learningRate * mHat) / (Math.sqrt(vHat) + 1e-8);
        }
        const direction = grad[i]! + 0.01 * value;
        slots[0]![i] = 0.9 * slots[0]![i]! + direction;
        return value - learningRate * (kind === 'nesterov' ? direction + 0.9 * slots[0]![i]! : slots[0]![i]!);
      });
    w = update(w, g.weight, state.w);
    b = update(b, g.bias, state.b);
  });
  return { weight: HostTensor.from('float64', [3, 4], w), bias: HostTensor.from('float64', [3], b) };
}

const optimizers: [string, 'sgd' | 'nesterov' | 'adamw', () => Optimizer][] = [
  ['SGD with momentum and weight decay', 'sgd', () => sgd({ momentum: 0.9, weightDecay: 0.01 })],
  ['SGD nesterov', 'nesterov', () => sgd({ momentum: 0.9, nesterov: true, weightDecay: 0.01 })],
  ['AdamW', 'adamw', () => adamw({ betas: [0.8, 0.9], weightDecay: 0.05 })],
];

describe.each(optimizers)('%s', (_label, kind, makeOptimizer) => {
  it('matches the float64 update rule over 5 steps, one step per run', async () => {
    const p = problem(1);
    const step = await compileTrainStep({ loss: p.loss, parameters: [p.weight, p.bias], optimizer: makeOptimizer(), runner: { executionProviders: ['cpu'] } });
    for (const batch of batches(5)) await step.run(batch, { learningRate: 0.1 });
    const expected = referenceTraining(kind, 5, 0.1);
    expectClose(step.parameters().weight!, expected.weight, 1e-5, 'weight');
    expectClose(step.parameters().bias!, expected.bias, 1e-5, 'bias');
    expect(step.stepCount).toBe(5);
    await step.release();
  });

  it('runs 5 steps in one session run with an ONNX Loop, with the same result', async () => {
    const p = problem(1);
    const step = await compileTrainStep({
      loss: p.loss,
      parameters: [p.weight, p.bias],
      optimizer: makeOptimizer(),
      stepsPerRun: 5,
      outputs: { logits: p.logits },
      runner: { executionProviders: ['cpu'] },
    });
    const list = batches(5);
    const stack = (key: 'x' | 'labels') => {
      const parts = list.map((batch) => batch[key]);
      const dtype = parts[0]!.dtype;
      const values = parts.flatMap((t) => t.toArray());
      return HostTensor.from(dtype, [5, ...parts[0]!.shape], dtype === 'int64' ? values.map((v) => BigInt(v)) : values);
    };
    const result = await step.run({ x: stack('x'), labels: stack('labels') }, { learningRate: 0.1 });
    expect(result.losses).toHaveLength(5);
    expect(result.outputs.logits!.shape).toEqual([5, 6, 3]);
    const expected = referenceTraining(kind, 5, 0.1);
    expectClose(step.parameters().weight!, expected.weight, 1e-5, 'weight');
    expectClose(step.parameters().bias!, expected.bias, 1e-5, 'bias');
    expect(step.stepCount).toBe(5);
    await step.release();
  });
});

describe('train step safety', () => {
  it('rejects a non-finite loss and leaves the parameters and step count unchanged', async () => {
    const p = problem(1);
    const step = await compileTrainStep({
      loss: p.loss,
      parameters: [p.weight, p.bias],
      optimizer: sgd({ momentum: 0.9 }),
      runner: { executionProviders: ['cpu'] },
    });
    const [good] = batches(1);
    await step.run(good!, { learningRate: 0.1 });
    const before = step.parameters().weight!.toArray();
    const poisoned = good!.x.toArray();
    poisoned[3] = Number.NaN;
    const error = await step.run({ x: HostTensor.from('float32', [6, 4], poisoned), labels: good!.labels }, { learningRate: 0.1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect((error as NonFiniteError).code).toBe('ERR_NON_FINITE');
    expect((error as Error).message).toMatch(/loss of step 2 is NaN/);
    expect(step.parameters().weight!.toArray()).toEqual(before);
    expect(step.stepCount).toBe(1);
    await step.release();
  });
});

describe('train step bad input', () => {
  it('rejects a non-scalar loss, an empty parameter list and a bad learning rate', async () => {
    const p = problem(1);
    await expect(compileTrainStep({ loss: p.logits, parameters: [p.weight], optimizer: sgd() })).rejects.toThrow(/scalar loss/);
    await expect(compileTrainStep({ loss: p.loss, parameters: [], optimizer: sgd() })).rejects.toThrow(ConfigError);
    expect(() => sgd({ nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => adamw({ betas: [1.5, 0.9] })).toThrow(/betas\[0\]/);
    const step = await compileTrainStep({ loss: p.loss, parameters: [p.weight], optimizer: sgd(), runner: { executionProviders: ['cpu'] } });
    await expect(step.run(batches(1)[0]!, { learningRate: Number.NaN })).rejects.toThrow(/learningRate/);
    await expect(step.run({ x: randomTensor([5, 4], 1) } as never, { learningRate: 0.1 })).rejects.toThrow(/missing input 'labels'|must have shape/);
    await step.release();
  });
});

describe('train step session options', () => {
  /** Opens the step's sessions through a recording factory and returns the options each got. */
  async function optionsFor(inputs: number, runner: RunnerOptions | undefined): Promise<(RunnerOptions | undefined)[]> {
    const graph = new Graph();
    const x = graph.input('x', 'float32', ['batch', inputs]);
    const weight = graph.weight('weight', HostTensor.zeros('float32', [2, inputs]));
    const loss = crossEntropy(linear(x, weight), graph.input('labels', 'int64', ['batch']));
    const seen: (RunnerOptions | undefined)[] = [];
    const step = await compileTrainStepWith(
      (model, options) => {
        seen.push(options);
        return createRunner(model, { ...options, executionProviders: ['cpu'] });
      },
      { loss, parameters: [weight], optimizer: sgd(), ...(runner ? { runner } : {}) },
    );
    await step.release();
    return seen;
  }

  it('turns the memory arena off for a model of 64 MiB of weights or more, and leaves small models and explicit settings alone', async () => {
    // 2 x 2^23 float32 trained weights = 64 MiB.
    const large = 2 ** 23;
    expect((await optionsFor(large, undefined)).map((o) => o?.cpuMemoryArena)).toEqual([false]);
    expect((await optionsFor(large, { cpuMemoryArena: true })).map((o) => o?.cpuMemoryArena)).toEqual([true]);
    expect((await optionsFor(16, undefined)).map((o) => o?.cpuMemoryArena)).toEqual([undefined]);
    expect((await optionsFor(large - 1024, { intraOpThreads: 1 })).map((o) => o?.cpuMemoryArena)).toEqual([undefined]);
  });
});
