// Pixel conversions of the page (pure functions, tested in Node).
import { HostTensor, ShapeError } from '@diffssl/core';
import { PIXEL_TO_MODEL } from '@diffssl/unet';

/**
 * Gray levels of RGBA pixels with Pillow's `convert('L')` (ITU-R 601-2 luma
 * in 16-bit fixed point: `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`), so
 * a gray image (R = G = B) keeps its exact values. Alpha is ignored, as PIL
 * does.
 *
 * @param rgba - interleaved RGBA bytes (canvas `ImageData.data`)
 * @returns one byte per pixel
 * @throws `ShapeError` when the length is not a multiple of 4
 */
export function grayFromRgba(rgba: ArrayLike<number>): Uint8Array {
  if (rgba.length % 4 !== 0) throw new ShapeError(`grayFromRgba: expected RGBA bytes (a multiple of 4); found ${rgba.length}`);
  const out = new Uint8Array(rgba.length / 4);
  for (let p = 0; p < out.length; p++) {
    out[p] = (rgba[4 * p]! * 19595 + rgba[4 * p + 1]! * 38470 + rgba[4 * p + 2]! * 7471 + 0x8000) >> 16;
  }
  return out;
}

/**
 * Model images from gray images: each replicated to `channels` planes and
 * scaled to [-1, 1] by `@diffssl/unet`'s `PIXEL_TO_MODEL` (what the eval
 * pipeline feeds a U-Net for gray data).
 *
 * @param images - gray images of `size` x `size` bytes each
 * @param size - side of the square images
 * @param channels - channels of the model input (3 for the Fashion-MNIST U-Net)
 * @returns float32 [B, channels, size, size]
 * @throws `ShapeError` for an image of another size
 */
export function modelImages(images: readonly Uint8Array[], size: number, channels: number): HostTensor<'float32'> {
  const plane = size * size;
  const out = new Float32Array(images.length * channels * plane);
  images.forEach((image, i) => {
    if (image.length !== plane) throw new ShapeError(`modelImages: expected ${size}x${size} = ${plane} gray pixels for image ${i}; found ${image.length}`);
    for (let c = 0; c < channels; c++) {
      const base = (i * channels + c) * plane;
      for (let p = 0; p < plane; p++) out[base + p] = PIXEL_TO_MODEL[image[p]!]!;
    }
  });
  return HostTensor.from('float32', [images.length, channels, size, size], out);
}

/** The centered square crop of a width x height image: source rectangle [x, y, side]. */
export function centerSquare(width: number, height: number): { x: number; y: number; side: number } {
  const side = Math.min(width, height);
  return { x: Math.floor((width - side) / 2), y: Math.floor((height - side) / 2), side };
}

/** Index of the largest value of each row of a [rows, k] array (the first on ties). */
export function argmaxRows(values: ArrayLike<number>, rows: number): number[] {
  const k = values.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (values[r * k + j]! > values[r * k + best]!) best = j;
    return best;
  });
}
