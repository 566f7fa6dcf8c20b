import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { arrayDataset } from './array-dataset.js';
import { batchCount, epochBatches, epochOrder, iterateBatches, loadBatch, type EpochBatch, type IterateOptions } from './batches.js';
import type { Dataset } from './dataset.js';

/** n gray images of h x w; pixel (i, y, x) = (7 i + 3 y + x) mod 256; label i mod 3. */
function grayData(count: number, height = 6, width = 8): Dataset {
  const values = Array.from({ length: count * height * width }, (_, k) => {
    const i = Math.floor(k / (height * width));
    const y = Math.floor((k % (height * width)) / width);
    return (7 * i + 3 * y + (k % width)) % 256;
  });
  return arrayDataset({
    images: HostTensor.from('uint8', [count, height, width], values),
    labels: Array.from({ length: count }, (_, i) => i % 3),
    classes: ['a', 'b', 'c'],
  });
}

async function collect(dataset: Dataset, options: IterateOptions): Promise<EpochBatch[]> {
  const out: EpochBatch[] = [];
  for await (const batch of iterateBatches(dataset, options)) out.push(batch);
  return out;
}

/** Per dataset index, the float32 values of its row across a list of batches. */
function rowsByIndex(batches: readonly EpochBatch[]): Map<number, number[]> {
  const rows = new Map<number, number[]>();
  for (const batch of batches) {
    const rowSize = batch.images.size / batch.indices.length;
    batch.indices.forEach((index, row) => rows.set(index, Array.from(batch.images.data.subarray(row * rowSize, (row + 1) * rowSize))));
  }
  return rows;
}

describe('epochs', () => {
  it('evaluation sees every image exactly once, the last partial batch kept', () => {
    const batches = epochBatches(10, { batchSize: 4 }, 0);
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(batchCount(10, { batchSize: 4 })).toBe(3);
  });

  it('training shuffles per (seed, epoch) and drops the last partial batch, as the reference', () => {
    const plan = { batchSize: 4, shuffle: true, dropLast: true, seed: 5 };
    const batches = epochBatches(10, plan, 0);
    expect(batches.map((b) => b.length)).toEqual([4, 4]);
    expect(batchCount(10, plan)).toBe(2);
    const order = Array.from(epochOrder(10, { shuffle: true, seed: 5, epoch: 0 }));
    expect([...order].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(batches.flat()).toEqual(order.slice(0, 8));
    expect(epochBatches(10, plan, 0)).toEqual(batches);
    expect(Array.from(epochOrder(10, { shuffle: true, seed: 5, epoch: 1 }))).not.toEqual(order);
    expect(Array.from(epochOrder(10, { shuffle: true, seed: 6, epoch: 0 }))).not.toEqual(order);
  });

  it('the visiting order does not depend on the batch size', () => {
    const order = (batchSize: number) => epochBatches(23, { batchSize, shuffle: true, seed: 9 }, 3).flat();
    expect(order(1)).toEqual(order(5));
    expect(order(7)).toEqual(order(23));
  });

  it('rejects bad batch sizes, seeds, epochs and start batches with ConfigError', async () => {
    expect(() => epochBatches(10, { batchSize: 0 }, 0)).toThrow(ConfigError);
    expect(() => epochBatches(10, { batchSize: 2, seed: -1 }, 0)).toThrow(ConfigError);
    expect(() => epochBatches(10, { batchSize: 2 }, 1.5)).toThrow(ConfigError);
    await expect(collect(grayData(4), { batchSize: 2, epoch: 0, startBatch: 3 })).rejects.toThrow('startBatch must be an integer in 0..2');
  });
});

describe('loadBatch', () => {
  it('stacks float32 [B,3,H,W] in [-1, 1] with gray replicated and int64 labels', async () => {
    const data = grayData(5, 2, 3);
    const { images, labels, indices } = await loadBatch(data, [4, 1]);
    expect(images.dtype).toBe('float32');
    expect(images.shape).toEqual([2, 3, 2, 3]);
    expect(labels.dtype).toBe('int64');
    expect(Array.from(labels.data)).toEqual([1n, 1n]);
    expect(indices).toEqual([4, 1]);
    // Image 4, pixel (y=1, x=2) = 28 + 3 + 2 = 33 -> 33 / 127.5 - 1 in float32, in all three channels.
    const expected = Math.fround(Math.fround(33 / 127.5) - 1);
    expect([0, 1, 2].map((c) => images.get(0, c, 1, 2))).toEqual([expected, expected, expected]);
    expect(images.get(1, 0, 0, 0)).toBe(Math.fround(Math.fround(7 / 127.5) - 1));
    const gray = await loadBatch(data, [0], { channels: 1 });
    expect(gray.images.shape).toEqual([1, 1, 2, 3]);
  });

  it('channels: 1 on an RGB image and a wrong imageSize are one ShapeError each', async () => {
    const rgb = arrayDataset({ images: HostTensor.zeros('uint8', [1, 3, 2, 2]), labels: [0], classes: 1, name: 'rgb' });
    await expect(loadBatch(rgb, [0], { channels: 1 })).rejects.toThrow(new ShapeError('rgb #0: image has 3 channels; channels: 1 needs gray images'));
    await expect(loadBatch(rgb, [0], { imageSize: [2, 3] })).rejects.toThrow(
      new ShapeError('rgb #0: image is 2x2 (HxW); expected 2x3, and no resize is configured (use a center-crop or random-crop transform)'),
    );
  });

  it('random crops depend on (seed, epoch, image) only: not on the batch size or the batch an image lands in', async () => {
    const data = grayData(12, 20, 24);
    const transform = { kind: 'random-crop', size: 8 } as const;
    const small = rowsByIndex(await collect(data, { batchSize: 2, shuffle: true, seed: 3, epoch: 1, transform }));
    const large = rowsByIndex(await collect(data, { batchSize: 5, shuffle: true, seed: 3, epoch: 1, transform }));
    expect(small.size).toBe(12);
    for (const [index, row] of small) expect(large.get(index)).toEqual(row);
    const otherEpoch = rowsByIndex(await collect(data, { batchSize: 12, shuffle: true, seed: 3, epoch: 2, transform }));
    expect([...otherEpoch].some(([index, row]) => row.join() !== small.get(index)!.join())).toBe(true);
  });
});

describe('iterateBatches', () => {
  it('resuming at (epoch, batch) yields the same batches as the uninterrupted epoch', async () => {
    const data = grayData(11, 20, 24);
    const options: IterateOptions = { batchSize: 3, shuffle: true, dropLast: true, seed: 11, epoch: 4, transform: { kind: 'random-crop', size: 12 } };
    const full = await collect(data, options);
    expect(full.map((b) => b.batchIndex)).toEqual([0, 1, 2]);
    const resumed = await collect(data, { ...options, startBatch: 2 });
    expect(resumed).toHaveLength(1);
    expect(resumed[0]!.batchIndex).toBe(2);
    expect(resumed[0]!.indices).toEqual(full[2]!.indices);
    expect(Array.from(resumed[0]!.images.data)).toEqual(Array.from(full[2]!.images.data));
    expect(Array.from(resumed[0]!.labels.data)).toEqual(Array.from(full[2]!.labels.data));
    expect(await collect(data, { ...options, startBatch: 3 })).toEqual([]);
  });

  it('evaluation iterates every test image once with the last partial batch', async () => {
    const data = grayData(7);
    const batches = await collect(data, { batchSize: 3, epoch: 0 });
    expect(batches.map((b) => b.indices)).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(batches[2]!.images.shape).toEqual([1, 3, 6, 8]);
  });

  it('an error in a later batch surfaces when that batch is reached; stopping early leaves no unhandled rejection', async () => {
    const data = grayData(6);
    const failing: Dataset = { ...data, get: (index) => (index >= 4 ? Promise.reject(new Error(`cannot read ${index}`)) : data.get(index)) };
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const batch of iterateBatches(failing, { batchSize: 2, epoch: 0 })) seen.push(batch.batchIndex);
      })(),
    ).rejects.toThrow('cannot read 4');
    expect(seen).toEqual([0, 1]);
    // Stop after the first batch while the failing one is being prefetched.
    for await (const batch of iterateBatches(failing, { batchSize: 4, epoch: 0 })) {
      expect(batch.batchIndex).toBe(0);
      break;
    }
  });
});
