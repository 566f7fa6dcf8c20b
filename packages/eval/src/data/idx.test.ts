import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ConfigError, FormatError } from '@diffssl/core';
import { EMBEDDED_DATA } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { FASHION_MNIST_CLASSES, readIdxDataset } from './idx.js';

/** An IDX file of unsigned bytes, written by hand from the format's definition. */
function idx(dims: number[], values: ArrayLike<number>): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  header.set([0, 0, 0x08, dims.length]);
  const view = new DataView(header.buffer);
  dims.forEach((dim, i) => view.setUint32(4 + 4 * i, dim, false));
  const out = new Uint8Array(header.length + values.length);
  out.set(header);
  out.set(Uint8Array.from(values), header.length);
  return out;
}

/** 5 images of 3x2 with pixel (i, y, x) = 10 i + 3 y + x, labels 4 3 2 1 0. */
function writeSplit(directory: string, prefix: 'train' | 't10k', options: { gzip?: boolean; images?: Uint8Array; labels?: Uint8Array } = {}): void {
  const pixels = Array.from({ length: 5 * 6 }, (_, k) => 10 * Math.floor(k / 6) + 3 * Math.floor((k % 6) / 2) + (k % 2));
  const images = options.images ?? idx([5, 3, 2], pixels);
  const labels = options.labels ?? idx([5], [4, 3, 2, 1, 0]);
  const suffix = options.gzip ? '.gz' : '';
  writeFileSync(join(directory, `${prefix}-images-idx3-ubyte${suffix}`), options.gzip ? gzipSync(images) : images);
  writeFileSync(join(directory, `${prefix}-labels-idx1-ubyte${suffix}`), options.gzip ? gzipSync(labels) : labels);
}

function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), 'diffssl-idx-'));
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error('expected the promise to reject');
  return error;
}

describe('readIdxDataset', () => {
  it('reads plain and gzipped splits into gray [1,H,W] images and labels in file order', async () => {
    const directory = temporaryDirectory();
    writeSplit(directory, 'train');
    writeSplit(directory, 't10k', { gzip: true });
    for (const split of ['train', 'test'] as const) {
      const data = await readIdxDataset(directory, { split });
      expect(data.length).toBe(5);
      expect(data.imageShape).toEqual([1, 3, 2]);
      expect(data.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      const example = await data.get(2);
      expect(example.image.shape).toEqual([1, 3, 2]);
      expect(example.image.toArray()).toEqual([20, 21, 23, 24, 26, 27]);
      expect(example.label).toBe(2);
      expect([0, 1, 2, 3, 4].map((i) => data.label(i))).toEqual([4, 3, 2, 1, 0]);
      expect(example.source).toMatch(/-images-idx3-ubyte(\.gz)? #2$/);
    }
  });

  it('keeps the first N examples with limit', async () => {
    const directory = temporaryDirectory();
    writeSplit(directory, 'train');
    const data = await readIdxDataset(directory, { split: 'train', limit: 2 });
    expect(data.length).toBe(2);
    expect((await data.get(1)).image.toArray()).toEqual([10, 11, 13, 14, 16, 17]);
    await expect(data.get(2)).rejects.toThrow(ConfigError);
    await expect(readIdxDataset(directory, { split: 'train', limit: 0 })).rejects.toThrow(ConfigError);
  });

  it('a truncated images file is one FormatError naming the file, the expected and the found size', async () => {
    const directory = temporaryDirectory();
    const whole = idx([5, 3, 2], new Uint8Array(30));
    writeSplit(directory, 'train', { images: whole.subarray(0, whole.length - 7) });
    const error = await failure(readIdxDataset(directory, { split: 'train' }));
    expect(error).toBeInstanceOf(FormatError);
    expect(error.message).toBe(
      `${join(directory, 'train-images-idx3-ubyte')}: truncated: the header declares 5 images of 3x2, 46 bytes in all; found 39 bytes`,
    );
  });

  it('a truncated gzip file is one FormatError naming the file', async () => {
    const directory = temporaryDirectory();
    writeSplit(directory, 't10k', { gzip: true });
    const path = join(directory, 't10k-labels-idx1-ubyte.gz');
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 10));
    const error = await failure(readIdxDataset(directory, { split: 'test' }));
    expect(error).toBeInstanceOf(FormatError);
    expect(error.message).toMatch(
      new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: corrupt gzip data \\(.*\\); the file is truncated or damaged$`),
    );
  });

  it('rejects a wrong magic number, trailing bytes and differing counts with FormatError', async () => {
    const directory = temporaryDirectory();
    const images = idx([5, 3, 2], new Uint8Array(30));
    images[3] = 1; // a labels-style header on the images file
    writeSplit(directory, 'train', { images });
    await expect(readIdxDataset(directory, { split: 'train' })).rejects.toThrow(
      /train-images-idx3-ubyte: expected the IDX magic number 00 00 08 03 .*; found 00 00 08 01/,
    );
    writeSplit(directory, 'train', { labels: Uint8Array.from([...idx([5], [0, 1, 2, 3, 4]), 9]) });
    await expect(readIdxDataset(directory, { split: 'train' })).rejects.toThrow(
      /train-labels-idx1-ubyte: the header declares 5 labels, 13 bytes in all; found 14 bytes \(1 unexpected bytes at the end\)/,
    );
    writeSplit(directory, 'train', { labels: idx([4], [0, 1, 2, 3]) });
    const error = await failure(readIdxDataset(directory, { split: 'train' }));
    expect(error).toBeInstanceOf(FormatError);
    expect(error.message).toContain('holds 5 images but train-labels-idx1-ubyte holds 4 labels');
  });

  it('a label outside the classes is one FormatError naming the file, the example and the class count', async () => {
    const directory = temporaryDirectory();
    writeSplit(directory, 'train', { labels: idx([5], [0, 1, 12, 3, 4]) });
    const error = await failure(readIdxDataset(directory, { split: 'train' }));
    expect(error).toBeInstanceOf(FormatError);
    expect(error.message).toBe(`${join(directory, 'train-labels-idx1-ubyte')}: label 12 of example 2 is outside the 10 classes (0..9)`);
    // With 3 class names, label 3 is already outside.
    writeSplit(directory, 'train');
    await expect(readIdxDataset(directory, { split: 'train', classes: ['a', 'b', 'c'] })).rejects.toThrow(
      /label 4 of example 0 is outside the 3 classes \(0\.\.2\)/,
    );
  });

  it('a missing directory or file is one ConfigError', async () => {
    const directory = temporaryDirectory();
    await expect(readIdxDataset(join(directory, 'nope'), { split: 'train' })).rejects.toThrow(
      new ConfigError(`IDX data: ${join(directory, 'nope')} is not a directory`),
    );
    writeSplit(directory, 'train');
    await expect(readIdxDataset(directory, { split: 'test' })).rejects.toThrow(
      `IDX data: ${directory} has no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz (the test images)`,
    );
  });

  it('reads the embedded FM-10k: 10,000 training and 10,000 test images whose labels match the raw bytes', async () => {
    const train = await readIdxDataset(EMBEDDED_DATA, { split: 'train', classes: FASHION_MNIST_CLASSES });
    const test = await readIdxDataset(EMBEDDED_DATA, { split: 'test', classes: FASHION_MNIST_CLASSES });
    expect([train.length, test.length]).toEqual([10_000, 10_000]);
    expect(train.imageShape).toEqual([1, 28, 28]);
    // Independent read: gunzip the label file here and skip its 8-byte header.
    for (const [data, prefix] of [
      [train, 'train'],
      [test, 't10k'],
    ] as const) {
      const raw = gunzipSync(readFileSync(join(EMBEDDED_DATA, `${prefix}-labels-idx1-ubyte.gz`)));
      const first = Array.from(raw.subarray(8, 28));
      expect(Array.from({ length: 20 }, (_, i) => data.label(i))).toEqual(first);
      expect(data.label(9_999)).toBe(raw[8 + 9_999]);
      const rawImages = gunzipSync(readFileSync(join(EMBEDDED_DATA, `${prefix}-images-idx3-ubyte.gz`)));
      expect((await data.get(9_999)).image.toArray()).toEqual(Array.from(rawImages.subarray(16 + 9_999 * 784, 16 + 10_000 * 784)));
    }
    // Fashion-MNIST's first training label is 9 (Ankle boot) and first test label 9 as well.
    expect([train.label(0), test.label(0), train.classes[9]]).toEqual([9, 9, 'Ankle boot']);
  });
});
