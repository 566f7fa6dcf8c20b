import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, HostTensor } from '@diffssl/core';
import { embeddedFlags, fixturePath, randomTensor, relativeError } from '@diffssl/testing';
import { AdmUNet, readTorchCheckpoint, type GuidedDiffusionFlags } from '@diffssl/unet';
import { describe, expect, it } from 'vitest';
import { createProtocolModel, PROTOCOLS, type Protocol } from '../heads/registry.js';
import type { ProtocolModel, ProtocolSettings } from '../heads/head-kind.js';
import type { ClassifierGraph, ExampleSource } from './classifier-graph.js';
import { trainClassifier } from './trainer.js';

const cpu = { executionProviders: ['cpu'] as const };
const BATCH = 12;
const MICRO = 5; // 5 + 5 + 2: uneven on purpose

/**
 * Seeded random inputs for every example (the same rows for the same index,
 * whatever the batch), labels `index % 10`: what a feature cache or the image
 * source would give, without running the extractor.
 */
function randomSource(model: ClassifierGraph, length: number, seed: number): ExampleSource {
  const inputs = [...model.inputs()];
  return {
    length,
    label: (index) => index % model.numClasses,
    async read(indices) {
      const feeds: Record<string, HostTensor> = {};
      inputs.forEach(([name, input], k) => {
        const rows = indices.map((index) => randomTensor(input.shape, seed + 1000 * index + k, -1, 1).toArray());
        feeds[name] = HostTensor.from(input.dtype, [indices.length, ...input.shape], rows.flat());
      });
      return feeds;
    },
  };
}

/** Every protocol of the registry, and fine-tuning for the kinds that take it: the settings of a tiny run. */
const cases: { name: string; settings: Omit<ProtocolSettings, 'numClasses'>; learningRate: number }[] = [
  { name: 'pixels', settings: { protocol: 'pixels', blocks: [], timesteps: [] }, learningRate: 0.5 },
  { name: 'random', settings: { protocol: 'random', blocks: [6], timesteps: [50] }, learningRate: 0.5 },
  { name: 'linear', settings: { protocol: 'linear', blocks: [6], timesteps: [50] }, learningRate: 0.5 },
  { name: 'attention', settings: { protocol: 'attention', blocks: [6], timesteps: [50] }, learningRate: 0.2 },
  { name: 'difformer', settings: { protocol: 'difformer', blocks: [5, 6], timesteps: [50, 150] }, learningRate: 0.2 },
  { name: 'diffeed', settings: { protocol: 'diffeed', blocks: [10], timesteps: [50], feedbackFrom: [14, 17] }, learningRate: 0.2 },
  { name: 'linear --finetune', settings: { protocol: 'linear', blocks: [6], timesteps: [50], finetune: true }, learningRate: 0.05 },
  { name: 'diffeed --finetune', settings: { protocol: 'diffeed', blocks: [10], timesteps: [50], feedbackFrom: [14, 17], finetune: true }, learningRate: 0.05 },
];

/** Protocols whose default models hold BatchNorm (DifFeed's feedback networks, C_B_R); all others must match the whole batch. */
const WITH_BATCH_NORM = new Set<Protocol>(['diffeed']);

async function unet(): Promise<AdmUNet> {
  return new AdmUNet(embeddedFlags() as unknown as GuidedDiffusionFlags, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
}

/** Trains a fresh model of the settings for one epoch of 2 batches of 12 and returns its state dict. */
async function trainOnce(settings: ProtocolSettings, learningRate: number, microBatch: number | undefined): Promise<Map<string, HostTensor>> {
  const model: ProtocolModel = createProtocolModel(settings, settings.protocol === 'pixels' ? undefined : await unet(), [1, 28, 28]);
  await trainClassifier({
    model,
    train: randomSource(model, 2 * BATCH, 1),
    test: randomSource(model, 3, 2),
    epochs: 1,
    batchSize: BATCH,
    microBatch,
    learningRate,
    momentum: 0.9,
    runner: cpu,
  });
  return new Map(model.modules().flatMap((module) => [...module.stateDict()]));
}

describe('trainClassifier with microBatch, every protocol', () => {
  it('covers every protocol of the registry', () => {
    expect(new Set(cases.map((c) => c.settings.protocol))).toEqual(new Set(PROTOCOLS));
  });

  it.each(cases)(
    '$name: batch 12 as micro-batches 5 + 5 + 2',
    async ({ settings: partial, learningRate }) => {
      const settings: ProtocolSettings = { ...partial, numClasses: 10, seed: 3 };
      const initial = new Map([...(await trainInitial(settings))].map(([name, tensor]) => [name, tensor.toArray()]));
      const whole = await trainOnce(settings, learningRate, undefined);
      const split = await trainOnce(settings, learningRate, MICRO);
      expect([...split.keys()]).toEqual([...whole.keys()]);
      const trainable = [...split.keys()].filter((name) => !/(running_mean|running_var|num_batches_tracked)$/.test(name));
      // Training moved the weights (so that agreement below means something).
      expect(trainable.some((name) => relativeError(split.get(name)!, HostTensor.from('float32', split.get(name)!.shape, initial.get(name)!), 0) > 1e-3)).toBe(
        true,
      );
      const counters = [...split.keys()].filter((name) => name.endsWith('num_batches_tracked'));
      expect(counters.length > 0).toBe(WITH_BATCH_NORM.has(settings.protocol));
      if (counters.length === 0) {
        for (const name of trainable) expect(relativeError(split.get(name)!, whole.get(name)!, 0), name).toBeLessThan(1e-5);
        return;
      }
      // With BatchNorm: one forward pass per micro-batch, so the counters advance 3 per batch (the whole batch: 1).
      for (const name of counters) {
        const start = initial.get(name)![0]!;
        expect(split.get(name)!.get() - start, name).toBe(3 * (whole.get(name)!.get() - start));
      }
      for (const name of trainable) expect(split.get(name)!.toArray().every(Number.isFinite), name).toBe(true);
    },
    300_000,
  );

  it('refuses a micro-batch that is not a positive integer; one of the batch size or more trains as the whole batch', async () => {
    const settings: ProtocolSettings = { protocol: 'pixels', blocks: [], timesteps: [], numClasses: 10, seed: 1 };
    for (const microBatch of [0, -1, 2.5]) {
      await expect(trainOnce(settings, 0.5, microBatch)).rejects.toThrow(new ConfigError(`train: microBatch must be a positive integer; found ${microBatch}`));
    }
    const whole = await trainOnce(settings, 0.5, undefined);
    for (const microBatch of [BATCH, 100]) {
      const same = await trainOnce(settings, 0.5, microBatch);
      for (const [name, tensor] of whole) expect(Array.from(same.get(name)!.toArray()), name).toEqual(Array.from(tensor.toArray()));
    }
  });

  it('resumes a micro-batched run killed mid-epoch to bit-identical weights and buffers (DifFeed: BatchNorm)', async () => {
    const settings: ProtocolSettings = { protocol: 'diffeed', blocks: [10], timesteps: [50], feedbackFrom: [14, 17], numClasses: 10, seed: 5 };
    const options = (model: ClassifierGraph) => ({
      model,
      train: randomSource(model, 2 * BATCH, 7),
      test: randomSource(model, 2, 8),
      epochs: 2,
      batchSize: BATCH,
      microBatch: MICRO,
      learningRate: 0.1,
      momentum: 0.9,
      runner: cpu,
    });
    const straight = createProtocolModel(settings, await unet());
    await trainClassifier(options(straight));
    const directory = mkdtempSync(join(tmpdir(), 'diffssl-micro-'));
    const crashing = createProtocolModel(settings, await unet());
    const crash = trainClassifier({
      ...options(crashing),
      directory,
      onProgress: (p) => {
        if (p.phase === 'train' && p.epoch === 2 && p.batch === 1) throw new Error('simulated crash');
      },
    });
    await expect(crash).rejects.toThrow('simulated crash');
    const resumed = createProtocolModel(settings, await unet());
    const result = await trainClassifier({ ...options(resumed), directory, resume: true });
    expect(result.resumedFromEpoch).toBe(1);
    const expected = new Map(straight.modules().flatMap((module) => [...module.stateDict()]));
    const actual = new Map(resumed.modules().flatMap((module) => [...module.stateDict()]));
    expect([...expected.keys()].some((name) => name.endsWith('num_batches_tracked'))).toBe(true);
    for (const [name, tensor] of expected) expect(Array.from(actual.get(name)!.toArray()), name).toEqual(Array.from(tensor.toArray()));
  }, 300_000);
});

/** The state dict of a fresh model of the settings, before training. */
async function trainInitial(settings: ProtocolSettings): Promise<Map<string, HostTensor>> {
  const model = createProtocolModel(settings, settings.protocol === 'pixels' ? undefined : await unet(), [1, 28, 28]);
  return new Map(model.modules().flatMap((module) => [...module.stateDict()]));
}
