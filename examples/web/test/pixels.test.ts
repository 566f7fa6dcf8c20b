import { HostTensor } from '@diffssl/core';
import { arrayDataset, loadBatch } from '@diffssl/eval';
import { describe, expect, it } from 'vitest';
import { argmaxRows, centerSquare, grayFromRgba, modelImages } from '../src/pixels.js';

describe('grayFromRgba', () => {
  it("uses Pillow's convert('L') fixed-point luma and keeps gray pixels exact", () => {
    // Hand-computed: (R*19595 + G*38470 + B*7471 + 32768) >> 16.
    // red 255: (4996725 + 32768) >> 16 = 76; green 255: (9809850 + 32768) >> 16 = 150; blue 255: (1905105 + 32768) >> 16 = 29.
    // (10, 200, 30): (195950 + 7694000 + 224130 + 32768) >> 16 = 8146848 >> 16 = 124.
    const rgba = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 10, 200, 30, 0, 0, 0, 0, 255, 255, 255, 255, 255];
    expect([...grayFromRgba(rgba)]).toEqual([76, 150, 29, 124, 0, 255]);
    const grays = Array.from({ length: 256 }, (_, v) => [v, v, v, 255]).flat();
    expect([...grayFromRgba(grays)]).toEqual(Array.from({ length: 256 }, (_, v) => v));
  });

  it('refuses bytes that are not RGBA', () => {
    expect(() => grayFromRgba([1, 2, 3])).toThrow(/a multiple of 4\); found 3/);
  });
});

describe('modelImages', () => {
  it("replicates gray to every channel and scales bytes exactly as the eval pipeline's loadBatch does", async () => {
    const all = Uint8Array.from({ length: 256 }, (_, v) => v);
    const images = modelImages([all, all.slice().reverse()], 16, 3);
    expect(images.shape).toEqual([2, 3, 16, 16]);
    const dataset = arrayDataset({ images: HostTensor.from('uint8', [2, 1, 16, 16], [...all, ...all.slice().reverse()]), labels: [0, 1], classes: 2 });
    const reference = await loadBatch(dataset, [0, 1], { channels: 3 });
    expect(Array.from(images.data)).toEqual(Array.from(reference.images.data as Float32Array));
    expect(images.data[0]).toBe(-1);
    expect(images.data[255]).toBe(1);
    expect(images.data[51]).toBeCloseTo(51 / 127.5 - 1, 6);
    expect(() => modelImages([all], 3, 3)).toThrow(/expected 3x3 = 9 gray pixels for image 0; found 256/);
  });
});

describe('centerSquare and argmaxRows', () => {
  it('crops the centered square of the shorter side', () => {
    expect(centerSquare(40, 28)).toEqual({ x: 6, y: 0, side: 28 });
    expect(centerSquare(28, 33)).toEqual({ x: 0, y: 2, side: 28 });
  });

  it('takes the first maximum of each row', () => {
    expect(argmaxRows([0, 3, 3, 1, 5, 9, -1, -2, -3], 3)).toEqual([1, 2, 0]);
  });
});
