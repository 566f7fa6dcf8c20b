import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';
import type { RandomGenerator } from '@diffssl/core';
import { imagePlanes, resizeImage } from './resample.js';

/**
 * How images are brought to the model's size (the reference's preprocessing,
 * guided-diffusion's `center_crop_arr` / `random_crop_arr` on PIL images):
 *
 * - `none`: images are used as they are and must all have the expected size
 *   (Fashion-MNIST, CIFAR-style folders).
 * - `center-crop` (evaluation): halve with BOX while the smaller side is at
 *   least twice `size`, resize with BICUBIC so the smaller side is `size`,
 *   crop the center `size` x `size`.
 * - `random-crop` (training): draw the smaller side uniformly from
 *   `ceil(size / maxCropFraction)..ceil(size / minCropFraction)`, resize to it
 *   as above, crop at a uniformly drawn position, then flip horizontally with
 *   probability 0.5 (`flip`, default true).
 *
 * @public
 */
export type ImageTransform =
  | {
      /** Use the images as they are. */
      readonly kind: 'none';
    }
  | {
      /** Evaluation: resize the smaller side to `size`, crop the center. */
      readonly kind: 'center-crop';
      /** Output height and width. */
      readonly size: number;
    }
  | {
      /** Training: random smaller side, random crop, random horizontal flip. */
      readonly kind: 'random-crop';
      /** Output height and width. */
      readonly size: number;
      /** Smallest crop as a fraction of the resized smaller side (default 0.8). */
      readonly minCropFraction?: number;
      /** Largest crop as a fraction of the resized smaller side (default 1.0). */
      readonly maxCropFraction?: number;
      /** Mirror with probability 0.5 (default true). */
      readonly flip?: boolean;
    };

/**
 * Python's `round()` for the non-negative values of the resize arithmetic:
 * round half to even.
 */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function checkSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new ConfigError(`${what}: size must be a positive integer; found ${size}`);
}

/**
 * guided-diffusion's resize to a smaller side of `smallerSide`: halve with
 * BOX (`(w // 2, h // 2)`) while the smaller side is at least twice
 * `smallerSide`, then BICUBIC to `round(w * scale), round(h * scale)` with
 * `scale = smallerSide / min(w, h)` (Python's rounding).
 *
 * @param image - uint8 [C,H,W]
 * @param smallerSide - the target length of the smaller side
 * @returns uint8 [C,H',W'] with min(H',W') = smallerSide (up to rounding of the larger side)
 * @throws `ConfigError` for a bad size; `ShapeError` for a bad image
 * @public
 */
export function resizeSmallerSide(image: HostTensor<'uint8'>, smallerSide: number): HostTensor<'uint8'> {
  checkSize(smallerSide, 'resizeSmallerSide');
  let current = image;
  let { height, width } = imagePlanes(image, 'resizeSmallerSide');
  while (Math.min(width, height) >= 2 * smallerSide) {
    width = Math.floor(width / 2);
    height = Math.floor(height / 2);
    current = resizeImage(current, width, height, 'box');
  }
  const scale = smallerSide / Math.min(width, height);
  return resizeImage(current, roundHalfEven(width * scale), roundHalfEven(height * scale), 'bicubic');
}

/**
 * A crop of a uint8 [C,H,W] image (a copy), optionally flipped horizontally.
 *
 * @param image - uint8 [C,H,W]
 * @param top - first row
 * @param left - first column
 * @param size - height and width of the crop
 * @param flip - mirror the columns (`arr[:, ::-1]`)
 * @returns uint8 [C,size,size]
 * @throws `ShapeError` when the crop does not fit
 * @public
 */
export function cropImage(image: HostTensor<'uint8'>, top: number, left: number, size: number, flip = false): HostTensor<'uint8'> {
  const { data, channels, height, width } = imagePlanes(image, 'cropImage');
  if (!(Number.isInteger(top) && Number.isInteger(left) && top >= 0 && left >= 0 && top + size <= height && left + size <= width)) {
    throw new ShapeError(`cropImage: a ${size}x${size} crop at (${top}, ${left}) does not fit in a ${height}x${width} image`);
  }
  const out = new Uint8Array(channels * size * size);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < size; y++) {
      const source = (c * height + top + y) * width + left;
      const target = (c * size + y) * size;
      if (!flip) out.set(data.subarray(source, source + size), target);
      else for (let x = 0; x < size; x++) out[target + x] = data[source + size - 1 - x]!;
    }
  }
  return new HostTensor('uint8', out, [channels, size, size]);
}

/**
 * guided-diffusion's `center_crop_arr` (the reference's evaluation
 * preprocessing): {@link resizeSmallerSide} to `size`, then the center crop
 * with `top = (H - size) // 2`, `left = (W - size) // 2`.
 *
 * @param image - uint8 [C,H,W]
 * @param size - output height and width
 * @returns uint8 [C,size,size]
 * @throws `ConfigError` for a bad size
 * @public
 */
export function centerCrop(image: HostTensor<'uint8'>, size: number): HostTensor<'uint8'> {
  checkSize(size, 'centerCrop');
  const resized = resizeSmallerSide(image, size);
  const [, height, width] = resized.shape as [number, number, number];
  return cropImage(resized, Math.floor((height - size) / 2), Math.floor((width - size) / 2), size);
}

/** The random draws of one {@link randomCrop}. @public */
export interface RandomCropDraw {
  /** The drawn smaller side before cropping. */
  smallerSide: number;
  /** Crop row in the resized image. */
  top: number;
  /** Crop column in the resized image. */
  left: number;
  /** Whether the crop is mirrored. */
  flip: boolean;
}

/**
 * guided-diffusion's `random_crop_arr` plus `ImageDataset`'s random flip (the
 * reference's training augmentation), with the draws taken from `random` in
 * the reference's order: smaller side, row, column, flip.
 *
 * @param image - uint8 [C,H,W]
 * @param size - output height and width
 * @param random - the generator of this image in this epoch
 * @param options - crop fractions (default 0.8 and 1.0) and whether to flip (default true)
 * @returns the crop and the values drawn
 * @throws `ConfigError` for bad fractions or size
 * @public
 */
export function randomCrop(
  image: HostTensor<'uint8'>,
  size: number,
  random: RandomGenerator,
  options: { minCropFraction?: number; maxCropFraction?: number; flip?: boolean } = {},
): {
  /** The crop, uint8 [C,size,size]. */
  image: HostTensor<'uint8'>;
  /** The values drawn. */
  draw: RandomCropDraw;
} {
  checkSize(size, 'randomCrop');
  const minFraction = options.minCropFraction ?? 0.8;
  const maxFraction = options.maxCropFraction ?? 1.0;
  if (!(minFraction > 0 && minFraction <= maxFraction && maxFraction <= 1)) {
    throw new ConfigError(`randomCrop: expected 0 < minCropFraction <= maxCropFraction <= 1; found ${minFraction} and ${maxFraction}`);
  }
  const smallest = Math.ceil(size / maxFraction);
  const largest = Math.ceil(size / minFraction);
  const smallerSide = smallest + random.integer(largest - smallest + 1);
  const resized = resizeSmallerSide(image, smallerSide);
  const [, height, width] = resized.shape as [number, number, number];
  const top = random.integer(height - size + 1);
  const left = random.integer(width - size + 1);
  const flip = (options.flip ?? true) && random.uniform() < 0.5;
  return { image: cropImage(resized, top, left, size, flip), draw: { smallerSide, top, left, flip } };
}

/** The float32 value of each uint8 pixel as the model sees it (`@diffssl/unet`'s, the one definition). */
export { PIXEL_TO_MODEL } from '@diffssl/unet';
