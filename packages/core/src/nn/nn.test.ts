import { randomTensor } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import {
  BatchNorm2d,
  BuildContext,
  compileModel,
  compileModuleTrainStep,
  compileTrainStep,
  ConfigError,
  Conv2d,
  createRunner,
  crossEntropy,
  gradients,
  Graph,
  GroupNorm,
  HostTensor,
  init,
  LayerNorm,
  Linear,
  mean,
  Module,
  ModuleDict,
  RandomGenerator,
  ReLU,
  reshape,
  Sequential,
  sgd,
  StateDictMismatchError,
  stopGradient,
  mul,
  sum,
  adamw,
  type SymbolicTensor,
} from '../index.js';

const cpu = { executionProviders: ['cpu'] as const };

/** A tiny conv net with every kind of tensor: conv, batch norm (buffers + counter), linear. */
class TinyNet extends Module {
  readonly features: Sequential;
  readonly classifier: Linear;
  constructor(seed: number) {
    super();
    const generator = new RandomGenerator(seed);
    this.features = this.registerModule(
      'features',
      new Sequential([new Conv2d(2, 3, generator, { kernelSize: 3, padding: 1, bias: false }), new BatchNorm2d(3), ReLU()]),
    );
    this.classifier = this.registerModule('classifier', new Linear(3 * 4 * 4, 5, generator));
  }
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return this.classifier.forward(context, reshape(this.features.forward(context, x), [x.shape[0]!, -1]));
  }
}

function batch(seed: number) {
  return {
    x: randomTensor([6, 2, 4, 4], seed, -2, 2),
    labels: HostTensor.from(
      'int64',
      [6],
      [0, 1, 2, 3, 4, 0].map((v) => BigInt((v + seed) % 5)),
    ),
  };
}

async function trainer(net: TinyNet, optimizer = sgd({ momentum: 0.9 })) {
  const graph = new Graph();
  const context = new BuildContext(graph, net, { mode: 'train' });
  const x = graph.input('x', 'float32', ['batch', 2, 4, 4]);
  const labels = graph.input('labels', 'int64', ['batch']);
  const logits = net.forward(context, x);
  return compileModuleTrainStep({ context, loss: crossEntropy(logits, labels), optimizer, runner: cpu });
}

describe('Module', () => {
  it('names tensors as PyTorch does: own parameters, own buffers, then children in order', () => {
    const net = new TinyNet(1);
    expect([...net.stateDict().keys()]).toEqual([
      'features.0.weight',
      'features.1.weight',
      'features.1.bias',
      'features.1.running_mean',
      'features.1.running_var',
      'features.1.num_batches_tracked',
      'classifier.weight',
      'classifier.bias',
    ]);
    expect(net.namedBuffers().map(([name]) => name)).toEqual(['features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked']);
    expect(net.parameterCount()).toBe(3 * 2 * 9 + 3 + 3 + 5 * 48 + 5);
    const dict = new ModuleDict([['12', new LayerNorm([2, 3])]]);
    expect([...dict.stateDict().keys()]).toEqual(['12.weight', '12.bias']);
    expect(() => dict.get('13')).toThrow(/no module '13'; it has 12/);
  });

  it('loads a state dict by name, converting float dtypes, and lists every mismatch in one error', () => {
    const net = new TinyNet(1);
    const source = new TinyNet(2).stateDict();
    net.loadStateDict(source);
    expect(net.classifier.weight.value.toArray()).toEqual(source.get('classifier.weight')!.toArray());
    const wide = new Map(source);
    wide.set('classifier.bias', source.get('classifier.bias')!.cast('float64'));
    net.loadStateDict(wide);
    expect(net.classifier.bias!.value.dtype).toBe('float32');
    const broken = new Map(source);
    broken.delete('features.1.running_var');
    broken.set('head.weight', HostTensor.zeros('float32', [1]));
    broken.set('classifier.weight', HostTensor.zeros('float32', [5, 47]));
    const before = net.classifier.weight.value;
    const error = (() => {
      try {
        net.loadStateDict(broken);
      } catch (e) {
        return e;
      }
    })() as StateDictMismatchError;
    expect(error).toBeInstanceOf(StateDictMismatchError);
    expect(error.missing).toEqual(['features.1.running_var']);
    expect(error.unexpected).toEqual(['head.weight']);
    expect(error.misshaped).toEqual(['classifier.weight: expected float32[5, 48], found float32[5, 47]']);
    expect(error.message).toMatch(/1 missing .*1 unexpected .*1 mis-shaped/);
    expect(net.classifier.weight.value).toBe(before);
  });

  it('initializes as PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for Linear and Conv2d, ones and zeros for norms', () => {
    const generator = new RandomGenerator(7);
    const linear = new Linear(400, 300, generator);
    const conv = new Conv2d(16, 32, generator, { kernelSize: 3, groups: 4 });
    for (const [tensor, fanIn] of [
      [linear.weight, 400],
      [linear.bias!, 400],
      [conv.weight, 4 * 9],
      [conv.bias!, 4 * 9],
    ] as const) {
      const values = tensor.value.toArray();
      const bound = 1 / Math.sqrt(fanIn);
      expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(bound);
      if (values.length > 1000) {
        const average = values.reduce((a, b) => a + b, 0) / values.length;
        const variance = values.reduce((a, b) => a + (b - average) ** 2, 0) / values.length;
        // U(-b, b) has mean 0 and variance b^2/3; allow 4 standard errors of the estimates
        // (the mean's is b/sqrt(3n); the variance's relative one is sqrt(0.8/n), uniform kurtosis 1.8).
        expect(Math.abs(average)).toBeLessThan((4 * bound) / Math.sqrt(3 * values.length));
        expect(Math.abs(variance / ((bound * bound) / 3) - 1)).toBeLessThan(4 * Math.sqrt(0.8 / values.length));
      }
    }
    expect(conv.weight.value.shape).toEqual([32, 4, 3, 3]);
    const norm = new BatchNorm2d(3);
    expect(norm.weight.value.toArray()).toEqual([1, 1, 1]);
    expect(norm.runningVar.value.toArray()).toEqual([1, 1, 1]);
    expect(norm.numBatchesTracked.value.dtype).toBe('int64');
    expect(new GroupNorm(2, 4).bias.value.toArray()).toEqual([0, 0, 0, 0]);
    expect(new Linear(3, 2, new RandomGenerator(1)).weight.value.toArray()).toEqual(new Linear(3, 2, new RandomGenerator(1)).weight.value.toArray());
    expect(new Linear(3, 2, new RandomGenerator(1)).weight.value.toArray()).not.toEqual(new Linear(3, 2, new RandomGenerator(2)).weight.value.toArray());
    expect(() => new Conv2d(6, 4, generator, { groups: 4 })).toThrow(/divisible by groups 4/);
  });
});

describe("initial distributions against PyTorch's (Kolmogorov-Smirnov on large draws)", () => {
  /** sup |F_n(x) - F(x)| of the draws against a CDF. */
  const ksStatistic = (draws: ArrayLike<number>, cdf: (x: number) => number): number => {
    const sorted = Float64Array.from(draws).sort();
    let worst = 0;
    for (let i = 0; i < sorted.length; i++) {
      const f = cdf(sorted[i]!);
      worst = Math.max(worst, Math.abs((i + 1) / sorted.length - f), Math.abs(f - i / sorted.length));
    }
    return worst;
  };
  /** The KS critical value at significance 0.001: 1.95 / sqrt(n). */
  const critical = (n: number) => 1.95 / Math.sqrt(n);
  const uniformCdf = (bound: number) => (x: number) => Math.min(1, Math.max(0, (x + bound) / (2 * bound)));
  /** The standard normal CDF, with erf from its Taylor series (about 1e-12). */
  const normalCdf = (x: number) => {
    const z = x / Math.SQRT2;
    if (Math.abs(z) > 5) return z > 0 ? 1 : 0;
    let term = z;
    let sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-18; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return 0.5 * (1 + (2 / Math.sqrt(Math.PI)) * sum);
  };

  it('Linear and grouped Conv2d weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform(a=sqrt(5)) and the bias rule)', () => {
    const generator = new RandomGenerator(2024);
    const linear = new Linear(1000, 200, generator);
    const wideBias = new Linear(10, 100_000, generator);
    // fan_in = in_channels / groups * kernel area = 32 / 4 * 9.
    const conv = new Conv2d(32, 4096, generator, { kernelSize: 3, groups: 4 });
    const cases: [string, number[], number][] = [
      ['Linear(1000, 200).weight', linear.weight.value.toArray(), 1000],
      ['Linear(10, 100000).bias', wideBias.bias!.value.toArray(), 10],
      ['Conv2d(32, 4096, 3, groups 4).weight', conv.weight.value.toArray(), 72],
    ];
    for (const [name, draws, fanIn] of cases) {
      const bound = 1 / Math.sqrt(fanIn);
      expect(draws.length, name).toBeGreaterThanOrEqual(100_000);
      const statistic = ksStatistic(draws, uniformCdf(bound));
      expect(statistic, name).toBeLessThan(critical(draws.length));
      // The test has power: the same draws judged against a bound 3% off, or against kaiming_uniform(a=0) (bound sqrt(6/fan_in))
      // or a normal of the same variance, are rejected.
      expect(ksStatistic(draws, uniformCdf(bound * 1.03)), name).toBeGreaterThan(critical(draws.length));
      expect(ksStatistic(draws, uniformCdf(Math.sqrt(6 / fanIn))), name).toBeGreaterThan(critical(draws.length));
      expect(
        ksStatistic(draws, (x) => normalCdf(x / (bound / Math.sqrt(3)))),
        name,
      ).toBeGreaterThan(critical(draws.length));
      expect(
        draws.reduce((a, v) => Math.max(a, Math.abs(v)), 0),
        name,
      ).toBeLessThanOrEqual(bound);
    }
  });

  it("init.normal is N(0, std^2) (nn.Embedding's N(0, 1) with std 1)", () => {
    const draws = init.normal([200_000], 0.5, new RandomGenerator(7)).toArray();
    expect(ksStatistic(draws, (x) => normalCdf(x / 0.5))).toBeLessThan(critical(draws.length));
    expect(ksStatistic(draws, (x) => normalCdf(x / 0.52))).toBeGreaterThan(critical(draws.length));
    expect(ksStatistic(draws, uniformCdf(0.5 * Math.sqrt(3)))).toBeGreaterThan(critical(draws.length));
  });

  it("LayerNorm, BatchNorm2d and GroupNorm start at weight 1 and bias 0, BatchNorm's running statistics at 0 and 1 (PyTorch's reset_parameters)", () => {
    const layer = new LayerNorm([4, 3, 3]);
    expect(new Set(layer.weight.value.toArray())).toEqual(new Set([1]));
    expect(new Set(layer.bias.value.toArray())).toEqual(new Set([0]));
    const batch = new BatchNorm2d(5);
    expect([batch.weight, batch.bias, batch.runningMean, batch.runningVar].map((t) => [...new Set(t.value.toArray())])).toEqual([[1], [0], [0], [1]]);
    expect(batch.numBatchesTracked.value.toArray()).toEqual([0]);
    const group = new GroupNorm(2, 6);
    expect([group.weight, group.bias].map((t) => [...new Set(t.value.toArray())])).toEqual([[1], [0]]);
  });
});

describe('BuildContext and module train steps', () => {
  it('updates BatchNorm running statistics in train mode as PyTorch does (momentum 0.1, unbiased variance) and counts batches', async () => {
    const norm = new BatchNorm2d(2);
    const graph = new Graph();
    const context = new BuildContext(graph, norm, { mode: 'train' });
    const x = graph.input('x', 'float32', [3, 2, 1, 2]);
    const y = norm.forward(context, x);
    const step = await compileModuleTrainStep({ context, loss: mean(mul(y, y)), optimizer: sgd(), runner: cpu });
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13];
    await step.run({ x: HostTensor.from('float32', [3, 2, 1, 2], values) }, { learningRate: 0 });
    step.syncModules();
    // Channel 0 holds 1,2,5,6,9,10; channel 1 holds 3,4,7,8,11,13 (hand-computed moments).
    const channel = (c: number) => values.filter((_, i) => Math.floor(i / 2) % 2 === c);
    const expectedMean = [0, 1].map((c) => 0.1 * (channel(c).reduce((a, b) => a + b, 0) / 6));
    const expectedVar = [0, 1].map((c) => {
      const m = channel(c).reduce((a, b) => a + b, 0) / 6;
      return 0.9 + 0.1 * (channel(c).reduce((a, b) => a + (b - m) ** 2, 0) / 5);
    });
    norm.runningMean.value.toArray().forEach((v, i) => expect(v).toBeCloseTo(expectedMean[i]!, 5));
    norm.runningVar.value.toArray().forEach((v, i) => expect(v).toBeCloseTo(expectedVar[i]!, 5));
    expect(norm.numBatchesTracked.value.get()).toBe(1);
    await step.release();
  });

  it('refuses a train step that would drop BatchNorm running-statistic updates', async () => {
    const norm = new BatchNorm2d(2);
    const graph = new Graph();
    const context = new BuildContext(graph, norm, { mode: 'train' });
    const y = norm.forward(context, graph.input('x', 'float32', [3, 2, 1, 2]));
    await expect(compileTrainStep({ loss: mean(y), parameters: [context.weight(norm.weight)], optimizer: sgd() })).rejects.toThrow(
      /no update for running_mean, running_var/,
    );
    const evalGraph = new Graph();
    const evalContext = new BuildContext(evalGraph, norm);
    expect(() => evalContext.updateBuffer(norm.runningMean, evalGraph.scalar(0))).toThrow(ConfigError);
    norm.forward(evalContext, evalGraph.input('x', 'float32', [3, 2, 1, 2]));
    await expect(compileModuleTrainStep({ context: evalContext, loss: evalGraph.scalar(0), optimizer: sgd() })).rejects.toThrow(/'eval' mode/);
  });

  it('trains only trainable tensors: frozen parts pass gradients but keep their values', async () => {
    const net = new TinyNet(3);
    net.features.freeze();
    const frozen = net.features.stateDict().get('0.weight')!.toArray();
    const step = await trainer(net);
    await step.run(batch(1), { learningRate: 0.5 });
    step.syncModules();
    expect(net.features.stateDict().get('0.weight')!.toArray()).toEqual(frozen);
    expect(Object.keys(step.step.parameters()).sort()).toEqual(['classifier.bias', 'classifier.weight']);
    // BatchNorm still updates its running statistics while its affine parameters are frozen.
    expect(net.features.stateDict().get('1.running_mean')!.toArray()).not.toEqual([0, 0, 0]);
    await step.release();

    // Gradients flow through a frozen part: freeze the classifier (after the features) and the
    // features still learn, while the classifier keeps its values.
    const other = new TinyNet(3);
    other.classifier.freeze();
    const [convBefore, classifierBefore] = [other.features.stateDict().get('0.weight')!.toArray(), other.classifier.stateDict().get('weight')!.toArray()];
    const otherStep = await trainer(other);
    await otherStep.run(batch(1), { learningRate: 0.5 });
    otherStep.syncModules();
    expect(Object.keys(otherStep.step.parameters()).sort()).toEqual(['features.0.weight', 'features.1.bias', 'features.1.weight']);
    expect(other.classifier.stateDict().get('weight')!.toArray()).toEqual(classifierBefore);
    const convAfter = other.features.stateDict().get('0.weight')!.toArray();
    expect(Math.max(...convAfter.map((v, i) => Math.abs(v - convBefore[i]!)))).toBeGreaterThan(1e-6);
    await otherStep.release();
  });

  it('resumes bit-identically from a saved training state (parameters, buffers, momentum, step, counters)', async () => {
    for (const optimizer of [sgd({ momentum: 0.9, weightDecay: 1e-3 }), adamw()]) {
      const uninterrupted = await trainer(new TinyNet(5), optimizer);
      for (let i = 0; i < 6; i++) await uninterrupted.run(batch(i), { learningRate: 0.1 });

      const first = await trainer(new TinyNet(5), optimizer);
      for (let i = 0; i < 3; i++) await first.run(batch(i), { learningRate: 0.1 });
      const saved = first.saveState();
      await first.release();
      const resumed = await trainer(new TinyNet(99), optimizer);
      resumed.loadState(saved);
      expect(resumed.stepCount).toBe(3);
      for (let i = 3; i < 6; i++) await resumed.run(batch(i), { learningRate: 0.1 });

      const a = uninterrupted.state();
      const b = resumed.state();
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [name, value] of a) expect(Array.from(b.get(name)!.toArray()), name).toEqual(Array.from(value.toArray()));
      expect(b.get('features.1.num_batches_tracked')!.get()).toBe(6);
      await uninterrupted.release();
      await resumed.release();
    }
  });

  it('rejects a training state of another model or optimizer', async () => {
    const step = await trainer(new TinyNet(5));
    const other = await trainer(new TinyNet(5), adamw());
    expect(() => step.loadState(other.saveState())).toThrow(/optimizer 'adamw'/);
    const state = step.state();
    state.delete('classifier.bias');
    expect(() => step.loadState(state)).toThrow(StateDictMismatchError);
    await step.release();
    await other.release();
  });
});

describe('stopGradient', () => {
  it('passes values, blocks gradients, and keeps what precedes it out of the backward pass', async () => {
    const graph = new Graph();
    const w = graph.weight('w', HostTensor.from('float32', [2], [2, 3]));
    const x = graph.input('x', 'float32', [2]);
    const early = mul(x, w);
    const y = sum(mul(stopGradient(early), w));
    const [dw] = gradients(y, [w]);
    const runner = await createRunner(compileModel({ outputs: { y, dw: dw! } }), cpu);
    const { y: value, dw: grad } = await runner.run({ x: HostTensor.from('float32', [2], [5, 7]) });
    // y = sum((x*w) * w); with the first product detached, dy/dw = x*w only.
    expect(value!.toArray()).toEqual([5 * 2 * 2 + 7 * 3 * 3]);
    expect(grad!.toArray()).toEqual([10, 21]);
    await runner.release();
    const backwardOps = graph.nodes.filter((node) => node.id > y.id).map((node) => node.op.name);
    expect(backwardOps.filter((name) => name === 'mul').length).toBe(1);
  });
});
