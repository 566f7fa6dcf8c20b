import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileModel, ConfigError, createRunner, Graph, HostTensor, NonFiniteError, ShapeError } from '@diffssl/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdmUNet,
  CheckpointMismatchError,
  createFeatureExtractor,
  featureKey,
  noiseSchedule,
  qSample,
  readTorchCheckpoint,
  seededNoise,
  type FeatureExtractor,
} from './index.js';
import { expectClose, fixturePath, loadFeatures, relativeError } from '@diffssl/testing';

const fixture = loadFeatures('adm-fm28');
const checkpoint = fixturePath('adm-fm28.pt');
const flags = fixture.config as never;
const cpu = { executionProviders: ['cpu'] as const };

function images(count: number): HostTensor<'float32'> {
  const x = fixture.tensor('x_start').toArray();
  const out = new Float32Array((count * x.length) / 2);
  for (let i = 0; i < count; i++)
    out.set(
      x.slice(((i % 2) * x.length) / 2, (((i % 2) + 1) * x.length) / 2).map((v) => v * (1 - 0.1 * i)),
      (i * x.length) / 2,
    );
  return HostTensor.from('float32', [count, 3, 28, 28], out);
}

describe('seededNoise', () => {
  it('is deterministic, standard normal, and distinct across images and timesteps', () => {
    const a = seededNoise(7, 3, 150, 20000);
    expect(seededNoise(7, 3, 150, 20000)).toEqual(a);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    expect(seededNoise(7, 4, 150, 4)).not.toEqual(a.slice(0, 4));
    expect(seededNoise(7, 3, 151, 4)).not.toEqual(a.slice(0, 4));
    expect(() => seededNoise(-1, 0, 0, 1)).toThrow(ConfigError);
  });

  it('gives training image i and test image i independent noise, each repeatable, the test split by default', () => {
    const size = 20000;
    const train = seededNoise(7, 3, 150, size, 'train');
    const test = seededNoise(7, 3, 150, size, 'test');
    expect(seededNoise(7, 3, 150, size, 'train')).toEqual(train);
    expect(seededNoise(7, 3, 150, size)).toEqual(test);
    // Independent: the sample correlation of two independent standard normal vectors is about N(0, 1/size), sd 0.007.
    let dot = 0;
    for (let i = 0; i < size; i++) dot += train[i]! * test[i]!;
    expect(Math.abs(dot / size)).toBeLessThan(0.035);
    expect(train.slice(0, 4)).not.toEqual(test.slice(0, 4));
    // The other keys still select streams within a split.
    expect(seededNoise(8, 3, 150, 4, 'train')).not.toEqual(train.slice(0, 4));
    expect(seededNoise(7, 4, 150, 4, 'train')).not.toEqual(train.slice(0, 4));
    expect(() => seededNoise(7, 3, 150, 4, 'val' as never)).toThrow(/split must be 'train' or 'test'; found "val"/);
  });
});

describe('FeatureExtractor', () => {
  let extractor: FeatureExtractor;
  beforeAll(async () => {
    extractor = await createFeatureExtractor({ checkpoint, config: flags, blocks: [5, 10], timesteps: [0, 150], batchSize: 4, runner: cpu });
  });
  afterAll(() => extractor?.release());

  it('equals host q_sample with the same seeded noise followed by the U-Net', async () => {
    const x = images(3);
    const features = await extractor.extract(x, { ids: [10, 11, 12] });
    const unet = new AdmUNet(flags, await readTorchCheckpoint(checkpoint));
    const graph = new Graph();
    const input = graph.input('x', 'float32', ['batch', 3, 28, 28]);
    const t = graph.input('t', 'int64', ['batch']);
    const { blocks } = unet.build(graph, { x: input, timesteps: t, taps: [5, 10] });
    const runner = await createRunner(compileModel({ outputs: { b5: blocks.get(5)!, b10: blocks.get(10)! } }), cpu);
    const schedule = noiseSchedule('linear', 1000);
    for (const timestep of [0, 150]) {
      const noise = HostTensor.from(
        'float32',
        [3, 3, 28, 28],
        [10, 11, 12].flatMap((id) => [...seededNoise(0, id, timestep, 3 * 28 * 28)]),
      );
      const xt = qSample(schedule, x, [timestep, timestep, timestep], noise);
      const direct = await runner.run({ x: xt, t: HostTensor.from('int64', [3], [timestep, timestep, timestep].map(BigInt)) });
      // Shapes first (expectClose checks them too), so a short or empty output cannot pass.
      expect(features.get(featureKey(timestep, 10))!.shape).toEqual([3, 64, 7, 7]);
      expect(features.get(featureKey(timestep, 5))!.shape).toEqual([3, 64, 14, 14]);
      expectClose(features.get(featureKey(timestep, 10))!, direct.b10!, 1e-4, `t${timestep} block 10`);
      expectClose(features.get(featureKey(timestep, 5))!, direct.b5!, 1e-4, `t${timestep} block 5`);
    }
    await runner.release();
  });

  it('gives each image the same features whatever its batch and position', async () => {
    const x = images(5);
    const together = await extractor.extract(x, { ids: [0, 1, 2, 3, 4] });
    const reversedImages = HostTensor.from(
      'float32',
      x.shape,
      [4, 3, 2, 1, 0].flatMap((i) => x.slice([i], [i + 1]).toArray()),
    );
    const reversed = await extractor.extract(reversedImages, { ids: [4, 3, 2, 1, 0] });
    const a = together.get(featureKey(150, 10))!;
    const b = reversed.get(featureKey(150, 10))!;
    expect(a.shape).toEqual([5, 64, 7, 7]);
    expect(b.shape).toEqual([5, 64, 7, 7]);
    for (let i = 0; i < 5; i++) expect(relativeError(a.slice([i], [i + 1]), b.slice([4 - i], [5 - i])), `image ${i}`).toBeLessThan(1e-5);
  });

  it('pools block outputs to min(resolution, pool) in the graph, as PyTorch adaptive average pooling would', async () => {
    const pooled = await createFeatureExtractor({ checkpoint, config: flags, blocks: [5, 10], timesteps: [150], pool: 3, runner: cpu });
    const x = images(2);
    const small = await pooled.extract(x, { ids: [7, 8] });
    await pooled.release();
    const full = await extractor.extract(x, { ids: [7, 8] });
    // PyTorch's bins, written out here: bin i of n over size s spans [floor(i*s/n), ceil((i+1)*s/n)).
    const adaptive = (tensor: HostTensor, n: number) => {
      const [b, c, s] = tensor.shape as [number, number, number, number];
      const values = tensor.toArray();
      const out: number[] = [];
      for (let i = 0; i < b * c; i++) {
        for (let y = 0; y < n; y++) {
          for (let xBin = 0; xBin < n; xBin++) {
            const [y0, y1, x0, x1] = [Math.floor((y * s) / n), Math.ceil(((y + 1) * s) / n), Math.floor((xBin * s) / n), Math.ceil(((xBin + 1) * s) / n)];
            let total = 0;
            for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) total += values[(i * s + yy) * s + xx]!;
            out.push(total / ((y1 - y0) * (x1 - x0)));
          }
        }
      }
      return HostTensor.from('float64', [b, c, n, n], out);
    };
    for (const block of [5, 10]) {
      const got = small.get(featureKey(150, block))!;
      expect(got.shape).toEqual([2, 64, 3, 3]);
      expect(relativeError(got, adaptive(full.get(featureKey(150, block))!, 3))).toBeLessThan(1e-5);
    }
    await expect(createFeatureExtractor({ checkpoint, config: flags, blocks: [5], timesteps: [150], pool: 0, runner: cpu })).rejects.toThrow(
      /pool must be a positive integer/,
    );
  });

  it('scales uint8 pixels as guided-diffusion does (x / 127.5 - 1 in float32, step by step) and replicates gray to RGB', async () => {
    const gray = HostTensor.from(
      'uint8',
      [1, 1, 28, 28],
      Array.from({ length: 784 }, (_, i) => (i * 7) % 256),
    );
    const rgb = HostTensor.from(
      'float32',
      [1, 3, 28, 28],
      [0, 1, 2].flatMap(() => gray.toArray().map((v) => Math.fround(Math.fround(v / 127.5) - 1))),
    );
    const fromGray = (await extractor.extract(gray)).get(featureKey(0, 5))!;
    const fromFloat = (await extractor.extract(rgb)).get(featureKey(0, 5))!;
    expect(fromFloat.shape).toEqual([1, 64, 14, 14]);
    expect(relativeError(fromGray, fromFloat)).toBeLessThan(1e-5);
  });

  it('rejects bad inputs with typed errors', async () => {
    await expect(extractor.extract(HostTensor.zeros('float32', [1, 3, 32, 32]))).rejects.toThrow(ShapeError);
    await expect(extractor.extract(HostTensor.zeros('float32', [1, 4, 28, 28]))).rejects.toThrow(/expected 3 channels/);
    const nan = HostTensor.zeros('float32', [1, 3, 28, 28]);
    nan.data[100] = Number.NaN;
    await expect(extractor.extract(nan)).rejects.toThrow(NonFiniteError);
    await expect(createFeatureExtractor({ checkpoint, config: flags, blocks: [20], timesteps: [0], runner: cpu })).rejects.toThrow(/block 20 is outside 1..19/);
    await expect(createFeatureExtractor({ checkpoint, config: flags, blocks: [5], timesteps: [1000], runner: cpu })).rejects.toThrow(
      /timestep 1000 is outside \[0, 1000\)/,
    );
    await expect(
      createFeatureExtractor({ checkpoint, config: { ...(fixture.config as object), num_channels: 64 } as never, blocks: [5], timesteps: [0], runner: cpu }),
    ).rejects.toThrow(CheckpointMismatchError);
    await expect(
      createFeatureExtractor({ checkpoint, config: { ...(fixture.config as object), num_res_blocks: 3 } as never, blocks: [5], timesteps: [0], runner: cpu }),
    ).rejects.toThrow(/missing/);
  });

  it('in float16 from a checkpoint (cast as each tensor is read) equals float16 from the loaded U-Net, and float32 within half precision', async () => {
    const x = images(2);
    const unet = new AdmUNet(flags, await readTorchCheckpoint(checkpoint));
    const fromFile = await createFeatureExtractor({ checkpoint, config: flags, blocks: [9, 14], timesteps: [150], dtype: 'float16', runner: cpu });
    const fromMemory = await createFeatureExtractor({ unet, blocks: [9, 14], timesteps: [150], dtype: 'float16', runner: cpu });
    const single = await createFeatureExtractor({ unet, blocks: [9, 14], timesteps: [150], runner: cpu });
    const [a, b, c] = [await fromFile.extract(x, { ids: [1, 2] }), await fromMemory.extract(x, { ids: [1, 2] }), await single.extract(x, { ids: [1, 2] })];
    await Promise.all([fromFile.release(), fromMemory.release(), single.release()]);
    for (const block of [9, 14]) {
      const key = featureKey(150, block);
      expect(a.get(key)!.toArray()).toEqual(b.get(key)!.toArray());
      expect(relativeError(a.get(key)!, c.get(key)!), key).toBeLessThan(2e-2);
      expect(relativeError(a.get(key)!, c.get(key)!), key).toBeGreaterThan(0);
    }
  });

  it('reuses the compiled model from the cache directory on a second start', async () => {
    const cacheDirectory = mkdtempSync(join(tmpdir(), 'diffssl-cache-'));
    const first = await createFeatureExtractor({ checkpoint, config: flags, blocks: [7], timesteps: [150], runner: cpu, cacheDirectory });
    const second = await createFeatureExtractor({ checkpoint, config: flags, blocks: [7], timesteps: [150], runner: cpu, cacheDirectory });
    expect(first.fromCache).toBe(false);
    expect(second.fromCache).toBe(true);
    const x = images(2);
    const [a, b] = [await first.extract(x), await second.extract(x)];
    expect(a.get(featureKey(150, 7))!.toArray()).toEqual(b.get(featureKey(150, 7))!.toArray());
    await first.release();
    await second.release();
  });
});

describe('AdmUNet configuration', () => {
  it('lists missing, unexpected and mis-shaped keys in one error', async () => {
    const weights = new Map(await readTorchCheckpoint(checkpoint));
    weights.delete('out.2.bias');
    weights.set('extra.weight', HostTensor.zeros('float32', [1]));
    weights.set('time_embed.0.bias', HostTensor.zeros('float32', [7]));
    const error = (() => {
      try {
        return new AdmUNet(flags, weights);
      } catch (e) {
        return e;
      }
    })() as CheckpointMismatchError;
    expect(error).toBeInstanceOf(CheckpointMismatchError);
    expect(error.missing).toEqual(['out.2.bias']);
    expect(error.unexpected).toEqual(['extra.weight']);
    expect(error.misshaped).toEqual(['time_embed.0.bias: expected [128], found [7]']);
  });

  it('builds the published 256x256 layout: 37 blocks, middle 19 at 8x8 with 1024 channels, block 24 at 16x16', async () => {
    const { unetLayout, admConfig, expectedWeights } = await import('./index.js');
    const layout = unetLayout(admConfig('256x256_diffusion_uncond'));
    expect(layout.blocks).toHaveLength(37);
    expect(layout.encoderBlocks).toBe(18);
    expect(layout.blocks[18]).toMatchObject({ part: 'middle', channels: 1024, resolution: 8 });
    expect(layout.blocks[23]).toMatchObject({ part: 'decoder', channels: 1024, resolution: 16 });
    // Parameter counts of the published models as the ADM paper reports them (millions):
    // an independent check of the layout for every preset (new attention order, num_heads, class embedding).
    const millions = (name: string) =>
      Math.round([...expectedWeights(admConfig(name as never)).values()].reduce((total, shape) => total + shape.reduce((a, b) => a * b, 1), 0) / 1e6);
    expect(['256x256_diffusion_uncond', '256x256_diffusion', '128x128_diffusion', '64x64_diffusion', '512x512_diffusion'].map(millions)).toEqual([
      553, 554, 422, 296, 559,
    ]);
    expect(() => admConfig({ image_size: 100, num_channels: 8, num_res_blocks: 1, attention_resolutions: '' })).toThrow(
      /no default channel_mult for image_size 100/,
    );
    expect(() => admConfig('nope' as never)).toThrow(/preset 'nope' is unknown/);
    expect(() => admConfig({ ...(fixture.config as object), colour: 1 } as never)).toThrow(/unknown flag\(s\) colour/);
  });
});
