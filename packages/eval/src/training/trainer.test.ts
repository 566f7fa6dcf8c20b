import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostTensor } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { arrayDataset } from '../data/array-dataset.js';
import { PixelClassifier, pixelSource } from '../protocols/pixels.js';
import { stepLearningRate, trainClassifier, type TrainingStep } from './trainer.js';

/** Two classes told apart by which half of a 4x4 gray image is bright, with a little seeded noise. */
function toyData(count: number, seed: number) {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const images = new Uint8Array(count * 16);
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const label = i % 2;
    labels.push(label);
    for (let p = 0; p < 16; p++) images[i * 16 + p] = Math.floor(p % 4 < 2 === (label === 0) ? 150 + 100 * random() : 100 * random());
  }
  return arrayDataset({ images: HostTensor.from('uint8', [count, 1, 4, 4], images), labels, classes: ['left', 'right'] });
}

describe('trainClassifier', () => {
  it('uses StepLR: x0.1 every 7 epochs', () => {
    expect([0, 6, 7, 13, 14, 27].map((epoch) => stepLearningRate(0.05, epoch))).toEqual([0.05, 0.05, 0.05 * 0.1, 0.05 * 0.1, 0.05 * 0.1 ** 2, 0.05 * 0.1 ** 3]);
  });

  it('learns a separable toy problem, scores every test example and drops only the last partial training batch', async () => {
    const train = pixelSource(toyData(70, 1));
    const test = pixelSource(toyData(21, 2));
    const model = new PixelClassifier(train.imageShape, 2, 3);
    const seen: number[] = [];
    const steps: TrainingStep[] = [];
    const result = await trainClassifier({
      model,
      train,
      test,
      epochs: 3,
      batchSize: 16,
      learningRate: 0.5,
      runner: { executionProviders: ['cpu'] },
      onProgress: (p) => p.phase === 'train' && p.epoch === 1 && seen.push(p.batch),
      onStep: (step) => steps.push(step),
    });
    expect(seen).toEqual([1, 2, 3, 4]);
    // onStep: each step's own loss; an epoch's mean loss is their mean.
    expect(steps.map((step) => [step.epoch, step.batch])).toEqual([1, 2, 3].flatMap((epoch) => [1, 2, 3, 4].map((batch) => [epoch, batch])));
    expect(steps.every((step) => step.learningRate === 0.5)).toBe(true);
    for (const epoch of [1, 2, 3]) {
      const losses = steps.filter((step) => step.epoch === epoch).map((step) => step.loss);
      expect(new Set(losses).size).toBe(4);
      expect(losses.reduce((sum, loss) => sum + loss, 0) / 4).toBeCloseTo(result.epochs[epoch - 1]!.loss, 12);
    }
    expect(result.metrics.count).toBe(21);
    expect(result.metrics.top1).toBe(100);
    expect(result.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(result.epochs[2]!.loss).toBeLessThan(result.epochs[0]!.loss);
    expect(model.head.stateDict().get('fcs.0.weight')!.shape).toEqual([2, 16]);
  });

  it('resumes from its per-epoch checkpoint after a crash mid-epoch, to bit-identical weights', async () => {
    const data = { train: pixelSource(toyData(64, 5)), test: pixelSource(toyData(10, 6)) };
    const settings = { epochs: 4, batchSize: 8, learningRate: 0.3, momentum: 0.9, seed: 11, runner: { executionProviders: ['cpu'] as const } };
    const straight = new PixelClassifier(data.train.imageShape, 2, 1);
    await trainClassifier({ model: straight, ...data, ...settings });

    const directory = mkdtempSync(join(tmpdir(), 'diffssl-train-'));
    const crashing = new PixelClassifier(data.train.imageShape, 2, 1);
    const crash = trainClassifier({
      model: crashing,
      ...data,
      ...settings,
      directory,
      onProgress: (p) => {
        if (p.phase === 'train' && p.epoch === 3 && p.batch === 5) throw new Error('simulated crash');
      },
    });
    await expect(crash).rejects.toThrow('simulated crash');
    const resumed = new PixelClassifier(data.train.imageShape, 2, 99);
    const result = await trainClassifier({ model: resumed, ...data, ...settings, directory, resume: true });
    expect(result.resumedFromEpoch).toBe(2);
    expect(result.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);
    for (const [name, tensor] of straight.head.stateDict())
      expect(Array.from(resumed.head.stateDict().get(name)!.toArray()), name).toEqual(Array.from(tensor.toArray()));
    await expect(trainClassifier({ model: resumed, ...data, ...settings, learningRate: 0.2, directory, resume: true })).rejects.toThrow(
      /belongs to a run with other settings/,
    );
  });

  it('refuses resume when there is no checkpoint to continue from, instead of silently starting over', async () => {
    const data = { train: pixelSource(toyData(16, 7)), test: pixelSource(toyData(4, 8)) };
    const settings = { epochs: 1, batchSize: 8, learningRate: 0.3, resume: true, runner: { executionProviders: ['cpu'] as const } };
    const directory = mkdtempSync(join(tmpdir(), 'diffssl-train-'));
    const model = new PixelClassifier(data.train.imageShape, 2, 1);
    await expect(trainClassifier({ model, ...data, ...settings, directory })).rejects.toThrow(
      new RegExp(`--resume: there is no checkpoint to continue from in ${directory} \\(expected ${join(directory, 'checkpoint.safetensors')}\\)`),
    );
    expect(readdirSync(directory)).toEqual([]);
    await expect(trainClassifier({ model, ...data, ...settings })).rejects.toThrow(/resume needs the folder of the run/);
  });
});
