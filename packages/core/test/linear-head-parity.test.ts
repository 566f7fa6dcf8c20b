/**
 * Parity with the reference implementation's GD(L) head (fixtures/heads.safetensors,
 * case `linear`): adaptive average pool to 2x2, flatten, Linear, cross-entropy,
 * one plain SGD step — with @diffssl/core alone.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d,
  compileTrainStep,
  crossEntropy,
  Graph,
  linear,
  reshape,
  sgd,
  gradients,
  compileModel,
  createRunner,
  type HostTensor,
} from '../src/index.js';
import { expectClose, loadTensorFixture } from '@diffssl/testing';

const fixture = loadTensorFixture('heads.safetensors');
const tensor = (name: string): HostTensor => fixture.tensor(name);
const config = JSON.parse(fixture.metadata.linear!) as { pre_pool_size: number };
const learningRate = Number(fixture.metadata['linear/lr']);

function buildHead() {
  const graph = new Graph();
  const input = tensor('linear/input');
  const x = graph.input('x', 'float32', ['batch', ...input.shape.slice(1)]);
  const labels = graph.input('labels', 'int64', ['batch']);
  const weight = graph.weight('fcs.0.weight', tensor('linear/param/fcs.0.weight'));
  const bias = graph.weight('fcs.0.bias', tensor('linear/param/fcs.0.bias'));
  const pooled = adaptiveAvgPool2d(x, config.pre_pool_size);
  const logits = linear(reshape(pooled, ['batch', -1]), weight, bias);
  const loss = crossEntropy(logits, labels);
  return { graph, x, labels, weight, bias, logits, loss };
}

describe('linear head (GD(L)) against the reference fixture', () => {
  let feeds: Record<string, HostTensor>;
  beforeAll(() => {
    feeds = { x: tensor('linear/input'), labels: tensor('labels') };
  });

  it('logits, loss and gradients match', async () => {
    const head = buildHead();
    const [weightGradient, biasGradient] = gradients(head.loss, [head.weight, head.bias]);
    const model = compileModel({ outputs: { logits: head.logits, loss: head.loss, weightGradient: weightGradient!, biasGradient: biasGradient! } });
    const runner = await createRunner(model, { executionProviders: ['cpu'] });
    const out = await runner.run(feeds);
    await runner.release();
    expectClose(out.logits!, tensor('linear/logits'), 1e-4, 'logits');
    expectClose(out.loss!.reshape([1]), tensor('linear/loss'), 1e-4, 'loss');
    expectClose(out.weightGradient!, tensor('linear/grad/fcs.0.weight'), 1e-4, 'weight gradient');
    expectClose(out.biasGradient!, tensor('linear/grad/fcs.0.bias'), 1e-4, 'bias gradient');
  });

  it('one SGD train step reproduces the loss and the parameters after the step', async () => {
    const head = buildHead();
    const step = await compileTrainStep({
      loss: head.loss,
      parameters: [head.weight, head.bias],
      optimizer: sgd(),
      outputs: { logits: head.logits },
      runner: { executionProviders: ['cpu'] },
    });
    const result = await step.run(feeds, { learningRate });
    expect(result.losses).toHaveLength(1);
    expect(Math.abs(result.losses[0]! - tensor('linear/loss').get(0))).toBeLessThan(1e-5);
    expectClose(result.outputs.logits!, tensor('linear/logits'), 1e-4, 'logits');
    const after = step.parameters();
    expectClose(after['fcs.0.weight']!, tensor('linear/after_sgd/fcs.0.weight'), 1e-4, 'weight after SGD');
    expectClose(after['fcs.0.bias']!, tensor('linear/after_sgd/fcs.0.bias'), 1e-4, 'bias after SGD');
    expect(step.stepCount).toBe(1);
    await step.release();
  });
});
