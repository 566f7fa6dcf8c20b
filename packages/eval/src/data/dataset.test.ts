import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { arrayDataset } from './array-dataset.js';
import { subsetDataset, takeFirst } from './dataset.js';

const images = HostTensor.from('uint8', [4, 1, 1, 2], [0, 1, 10, 11, 20, 21, 30, 31]);

describe('arrayDataset', () => {
  it('serves [C,H,W] views with labels and numbered or named classes', async () => {
    const data = arrayDataset({ images, labels: new BigInt64Array([3n, 2n, 1n, 0n]), classes: 4 });
    expect([data.length, data.classes, data.imageShape]).toEqual([4, ['0', '1', '2', '3'], [1, 1, 2]]);
    const example = await data.get(2);
    expect([example.image.shape, example.image.toArray(), example.label, example.source]).toEqual([[1, 1, 2], [20, 21], 1, 'array #2']);
    await expect(data.get(4)).rejects.toThrow(new ConfigError('array: index 4 is outside 0..3 (4 examples)'));
  });

  it('a label outside the classes, a label count mismatch and bad shapes are one clear error each', () => {
    expect(() => arrayDataset({ images, labels: [0, 1, 5, 0], classes: ['a', 'b'] })).toThrow(
      new ConfigError('array: label 5 of image 2 is outside the 2 classes (0..1)'),
    );
    expect(() => arrayDataset({ images, labels: [0], classes: 2 })).toThrow(new ShapeError('array: expected one label per image (4); found 1 labels'));
    expect(() => arrayDataset({ images: HostTensor.zeros('uint8', [1, 2, 1, 1]), labels: [0], classes: 1 })).toThrow(ShapeError);
    expect(() => arrayDataset({ images: HostTensor.zeros('float32', [1, 2, 2]) as unknown as HostTensor<'uint8'>, labels: [0], classes: 1 })).toThrow(
      ShapeError,
    );
  });
});

describe('views', () => {
  const data = arrayDataset({ images, labels: [0, 1, 0, 1], classes: 2 });

  it('subsetDataset maps indices in the given order', async () => {
    const view = subsetDataset(data, [3, 0]);
    expect(view.length).toBe(2);
    expect((await view.get(0)).image.toArray()).toEqual([30, 31]);
    expect([view.label(0), view.source(1)]).toEqual([1, 'array #0']);
    expect(() => subsetDataset(data, [1, 1])).toThrow(ConfigError);
    expect(() => subsetDataset(data, [4])).toThrow(ConfigError);
  });

  it('takeFirst keeps the first N', async () => {
    expect(takeFirst(data, 2).length).toBe(2);
    expect(takeFirst(data, 10)).toBe(data);
    expect(() => takeFirst(data, 0)).toThrow(ConfigError);
  });
});
