import { readFileSync } from 'node:fs';
import { ConfigError, HostTensor, RandomGenerator, readSafetensors, ShapeError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { resizeImage } from './resample.js';
import { centerCrop, cropImage, PIXEL_TO_MODEL, randomCrop, resizeSmallerSide } from './transforms.js';

const fixture = readSafetensors(readFileSync(new URL('../../test/fixtures/pil/resample.safetensors', import.meta.url)));
interface Case {
  name: string;
  input: string;
  op: 'resize' | 'center_crop_arr' | 'random_crop_arr';
  args: { filter?: 'box' | 'bicubic'; width?: number; height?: number; size?: number; smallerDimSize?: number; cropY?: number; cropX?: number; flip?: boolean };
}
const cases = JSON.parse(fixture.metadata.cases!) as Case[];

/** numpy HWC (or HW for gray) -> uint8 [C,H,W]. */
function fromHwc(tensor: HostTensor): HostTensor<'uint8'> {
  const [height, width, channels = 1] = tensor.shape as [number, number, number?];
  const data = tensor.contiguous().data as Uint8Array;
  const out = new Uint8Array(data.length);
  for (let p = 0; p < height * width; p++) for (let c = 0; c < channels; c++) out[c * height * width + p] = data[p * channels + c]!;
  return new HostTensor('uint8', out, [channels, height, width]);
}

function tensor(name: string): HostTensor<'uint8'> {
  const value = fixture.tensors.get(name);
  if (!value) throw new Error(`fixture has no ${name}`);
  return fromHwc(value);
}

/** A generator whose draws are given: what random_crop_arr drew in the fixture. */
function scripted(values: number[]): RandomGenerator {
  const queue = [...values];
  return {
    integer: (bound: number) => {
      const value = queue.shift()!;
      expect(value).toBeLessThan(bound);
      return value;
    },
    uniform: () => queue.shift()!,
  } as unknown as RandomGenerator;
}

function countDifferences(actual: HostTensor<'uint8'>, expected: HostTensor<'uint8'>): number {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.contiguous().data;
  const b = expected.contiguous().data;
  let differing = 0;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) differing++;
  return differing;
}

describe('transforms against PIL (committed fixture, Pillow 9.4)', () => {
  it('has resize, center-crop and random-crop cases', () => {
    for (const op of ['resize', 'center_crop_arr', 'random_crop_arr']) expect(cases.filter((c) => c.op === op).length).toBeGreaterThanOrEqual(8);
  });
  for (const testCase of cases) {
    it(`${testCase.name} is bit-exact`, () => {
      const input = tensor(`input/${testCase.input}`);
      const expected = tensor(`output/${testCase.name}`);
      const { args } = testCase;
      let actual: HostTensor<'uint8'>;
      if (testCase.op === 'resize') actual = resizeImage(input, args.width!, args.height!, args.filter!);
      else if (testCase.op === 'center_crop_arr') actual = centerCrop(input, args.size!);
      else {
        // Draw order of random_crop_arr + flip: smaller side (offset from ceil(size / 1.0)), row, column, flip.
        const draws = [args.smallerDimSize! - args.size!, args.cropY!, args.cropX!, args.flip ? 0.25 : 0.75];
        const result = randomCrop(input, args.size!, scripted(draws));
        expect(result.draw).toEqual({ smallerSide: args.smallerDimSize, top: args.cropY, left: args.cropX, flip: args.flip });
        actual = result.image;
      }
      expect(countDifferences(actual, expected)).toBe(0);
    });
  }
});

describe('transforms', () => {
  const image = HostTensor.from('uint8', [1, 2, 3], [1, 2, 3, 4, 5, 6]);

  it('cropImage copies the window and mirrors it', () => {
    expect(cropImage(image, 0, 1, 2).toArray()).toEqual([2, 3, 5, 6]);
    expect(cropImage(image, 0, 1, 2, true).toArray()).toEqual([3, 2, 6, 5]);
    expect(() => cropImage(image, 1, 0, 2)).toThrow(ShapeError);
  });

  it('resizeSmallerSide halves with BOX while the smaller side is at least twice the target', () => {
    // 64x64 to 16: two BOX halvings (64 -> 32 -> 16) and no BICUBIC change; a 2x2 box average of a constant image is the constant.
    const constant = HostTensor.full('uint8', [3, 64, 64], 77) as HostTensor<'uint8'>;
    const out = resizeSmallerSide(constant, 16);
    expect(out.shape).toEqual([3, 16, 16]);
    expect(new Set(out.toArray())).toEqual(new Set([77]));
    // Python's round() is half-to-even: 5 * 2.5 = 12.5 -> 12 (Math.round would give 13).
    expect(resizeSmallerSide(HostTensor.zeros('uint8', [1, 2, 5]), 5).shape).toEqual([1, 5, 12]);
  });

  it('rejects bad sizes and fractions with ConfigError', () => {
    expect(() => resizeImage(image, 0, 2, 'box')).toThrow(ConfigError);
    expect(() => centerCrop(image, 0)).toThrow(ConfigError);
    expect(() => randomCrop(image, 2, new RandomGenerator(0), { minCropFraction: 1.2 })).toThrow(ConfigError);
  });

  it('randomCrop draws the smaller side in ceil(size/1.0)..ceil(size/0.8) and every crop position and flip', () => {
    const big = HostTensor.zeros('uint8', [1, 40, 50]);
    const sides = new Set<number>();
    const flips = new Set<boolean>();
    const tops = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const { image: out, draw } = randomCrop(big, 16, new RandomGenerator(3, i));
      expect(out.shape).toEqual([1, 16, 16]);
      sides.add(draw.smallerSide);
      flips.add(draw.flip);
      tops.add(draw.top);
    }
    expect([...sides].sort((a, b) => a - b)).toEqual([16, 17, 18, 19, 20]); // ceil(16 / 0.8) = 20
    expect(flips).toEqual(new Set([true, false]));
    expect(Math.max(...tops)).toBeGreaterThan(0);
  });

  it('maps pixels to [-1, 1] like guided-diffusion (x/127.5-1) and torchvision (ToTensor+Normalize(0.5,0.5)), to the float32 bit', () => {
    const f = Math.fround;
    for (let x = 0; x < 256; x++) {
      expect(PIXEL_TO_MODEL[x]).toBe(f(f(x / 127.5) - 1));
      expect(PIXEL_TO_MODEL[x]).toBe(f(f(f(x / 255) - 0.5) / 0.5));
    }
    expect([PIXEL_TO_MODEL[0], PIXEL_TO_MODEL[255]]).toEqual([-1, 1]);
  });
});
