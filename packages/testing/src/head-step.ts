import {
  BuildContext,
  compileModel,
  compileModuleTrainStep,
  createRunner,
  crossEntropy,
  gradients,
  Graph,
  HostTensor,
  sgd,
  type Module,
  type SymbolicTensor,
} from '@diffssl/core';
import { expect } from 'vitest';
import type { TensorFixture } from './assets.js';
import { batchNorm64, toTensor64 } from './float64-reference.js';
import { expectClose, relativeError } from './tensors.js';

/** What one reference-style training step of a head produced. */
export interface HeadStepResult {
  logits: HostTensor;
  loss: HostTensor;
  /** Gradients by state-dict name (from `gradients`, before the step). */
  grads: Map<string, HostTensor>;
  /** Parameters after one plain SGD step (through `compileModuleTrainStep`), by state-dict name. */
  after: Map<string, HostTensor>;
  /** Buffers after the step (running statistics), by state-dict name. */
  buffers: Map<string, HostTensor>;
}

/**
 * Runs a head as the fixtures were made: training mode, mean cross-entropy on
 * `labels`, gradients, and one plain SGD step at `learningRate`, through the
 * public API (BuildContext, gradients, compileModuleTrainStep).
 */
export async function runHeadStep(
  modules: Module | Module[],
  build: (context: BuildContext, graph: Graph) => { logits: SymbolicTensor; feeds: Record<string, HostTensor> },
  labels: HostTensor,
  learningRate: number,
): Promise<HeadStepResult> {
  const cpu = { executionProviders: ['cpu'] as const };
  // Gradients and forward values.
  const graph = new Graph();
  const context = new BuildContext(graph, modules, { mode: 'train' });
  const { logits, feeds } = build(context, graph);
  const labelInput = graph.input('labels', 'int64', [logits.shape[0]!]);
  const loss = crossEntropy(logits, labelInput);
  const trainable = context.trainableWeights();
  const grads = gradients(
    loss,
    trainable.map(({ weight }) => weight),
  );
  const outputs: Record<string, SymbolicTensor> = { logits, loss };
  trainable.forEach(({ weight }, i) => (outputs[`grad/${weight.name}`] = grads[i]!));
  const runner = await createRunner(compileModel({ outputs }), cpu);
  const values = await runner.run({ ...feeds, labels });
  await runner.release();
  // One SGD step through the train-step path.
  const stepGraph = new Graph();
  const stepContext = new BuildContext(stepGraph, modules, { mode: 'train' });
  const stepBuilt = build(stepContext, stepGraph);
  const stepLabels = stepGraph.input('labels', 'int64', [stepBuilt.logits.shape[0]!]);
  const step = await compileModuleTrainStep({ context: stepContext, loss: crossEntropy(stepBuilt.logits, stepLabels), optimizer: sgd(), runner: cpu });
  await step.run({ ...stepBuilt.feeds, labels }, { learningRate });
  const after = new Map(Object.entries(step.step.parameters()));
  const buffers = new Map(Object.entries(step.step.buffers()));
  await step.release();
  return {
    logits: values.logits!,
    loss: values.loss!.reshape([1]),
    grads: new Map(trainable.map(({ weight }) => [weight.name!, values[`grad/${weight.name}`]!])),
    after,
    buffers,
  };
}

/** One case of the reference's head fixture: what a step of the reference produced, by parameter name. */
export interface ReferenceStep {
  logits: HostTensor;
  loss: HostTensor;
  /** Parameters before the step. */
  params: Map<string, HostTensor>;
  grads: Map<string, HostTensor>;
  after: Map<string, HostTensor>;
}

/**
 * Asserts that a head step matches a reference case, twice over:
 * - the fixtures' criterion, max |a - b| <= 1e-4 * max(1, max |b|), for the
 *   logits, the loss, every gradient and every parameter after the step;
 * - and, because that criterion is absolute for small tensors (a LayerNorm
 *   affine gradient of 1e-3 could be 10 % off), every gradient and every
 *   parameter *update* (after - before, which for small gradients is below
 *   1e-4 and so invisible in the parameters themselves) within
 *   `scaledTolerance` of its own scale, with a guard that each update is large
 *   enough to be seen at that tolerance.
 */
export function expectMatchesReferenceStep(
  actual: Pick<HeadStepResult, 'logits' | 'loss' | 'grads' | 'after'>,
  reference: ReferenceStep,
  label: string,
  scaledTolerance = 1e-3,
): void {
  expectClose(actual.logits, reference.logits, 1e-4, `${label} logits`);
  expectClose(actual.loss, reference.loss, 1e-4, `${label} loss`);
  expect([...actual.grads.keys()].sort(), `${label}: gradients`).toEqual([...reference.grads.keys()].sort());
  expect([...actual.after.keys()].sort(), `${label}: parameters after the step`).toEqual([...reference.after.keys()].sort());
  for (const [name, expected] of reference.grads) {
    const got = actual.grads.get(name)!;
    expectClose(got, expected, 1e-4, `${label} grad ${name}`);
    const error = relativeError(got, expected, 0);
    expect(error, `${label} grad ${name}: error ${error} of its own scale > ${scaledTolerance}`).toBeLessThanOrEqual(scaledTolerance);
  }
  for (const [name, expected] of reference.after) {
    const got = actual.after.get(name)!;
    expectClose(got, expected, 1e-4, `${label} after_sgd ${name}`);
    const before = reference.params.get(name);
    expect(before, `${label}: the reference's parameter ${name} before the step`).toBeDefined();
    const [b, e, g] = [before!.toArray(), expected.toArray(), got.toArray()];
    // Both sides' parameters are rounded to float32: allow two units in the last place of the largest parameter on top.
    let [ulp, scale, difference] = [0, 0, 0];
    for (let i = 0; i < b.length; i++) {
      ulp = Math.max(ulp, Math.abs(b[i]!) * 2 ** -23);
      scale = Math.max(scale, Math.abs(e[i]! - b[i]!));
      const gap = Math.abs(g[i]! - b[i]! - (e[i]! - b[i]!));
      if (!(gap <= difference)) difference = Number.isNaN(gap) ? Infinity : gap;
    }
    if (scale === 0) {
      expect(difference, `${label} ${name}: the reference leaves it unchanged`).toBeLessThanOrEqual(2 * ulp);
      continue;
    }
    // The update must stand well above float32 resolution, or a missing update could pass.
    expect(scale, `${label} ${name}: update ${scale} too small to check against float32 resolution ${ulp}`).toBeGreaterThan(10 * ulp);
    expect(difference, `${label} update of ${name}: differs by ${difference}, update scale ${scale}`).toBeLessThanOrEqual(scaledTolerance * scale + 2 * ulp);
  }
}

/** The reference step of one case of `heads.safetensors` (`linear`, `attention`, `difformer`, `poolhead`). */
export function referenceStep(fixture: TensorFixture, name: string): ReferenceStep {
  return {
    logits: fixture.tensor(`${name}/logits`),
    loss: fixture.tensor(`${name}/loss`),
    params: fixture.group(`${name}/param/`),
    grads: fixture.group(`${name}/grad/`),
    after: fixture.group(`${name}/after_sgd/`),
  };
}

/**
 * Expects a BatchNorm2d's running statistics after one training step from
 * running mean 0 and variance 1 to be PyTorch's, computed in float64 from the
 * input it normalized (0.1 * batch mean; 0.9 + 0.1 * unbiased batch
 * variance), within 1e-5; and, as a control, the batch variance to be far
 * from 1 (more than 1e-2 away for some channel), so a buffer left at its start
 * would fail.
 *
 * @param written - tensors written by the step, with `buffer_after/<prefix>.running_mean` and `.running_var`
 * @param prefix - the BatchNorm's state-dict prefix (`pre_layer.12.1`)
 * @param input - what it normalized, [B, C, H, W]
 */
export function expectFirstStepRunningStatistics(written: ReadonlyMap<string, HostTensor>, prefix: string, input: HostTensor): void {
  const c = input.shape[1]!;
  const [zeros, ones] = [Array<number>(c).fill(0), Array<number>(c).fill(1)];
  const reference = batchNorm64(toTensor64(input), { weight: ones, bias: zeros, runningMean: zeros, runningVar: ones }, 'train');
  expect(relativeError(written.get(`buffer_after/${prefix}.running_mean`)!, HostTensor.from('float64', [c], reference.runningMean))).toBeLessThan(1e-5);
  expect(relativeError(written.get(`buffer_after/${prefix}.running_var`)!, HostTensor.from('float64', [c], reference.runningVar))).toBeLessThan(1e-5);
  expect(Math.max(...reference.runningVar.map((r) => Math.abs((r - 0.9) / 0.1 - 1)))).toBeGreaterThan(1e-2);
}
