/**
 * Small helpers of the notebooks: where the embedded default lives, images
 * and feature maps as PNG (for `tslab.display.png`), and feature rows.
 *
 * The notebooks run with their folder as working directory (Jupyter starts
 * kernels there), so paths are relative to `examples/notebooks/`.
 */
import { crc32, deflateSync } from 'node:zlib';
import { resolve } from 'node:path';
import { HostTensor } from '@diffssl/core';

/** The embedded default: the Fashion-MNIST ADM U-Net, its flags, and the FM-10k data. */
export const EMBEDDED = {
  checkpoint: resolve('../../assets/models/adm-fm28/adm-fm28.pt'),
  config: resolve('../../assets/models/adm-fm28/flags.json'),
  data: resolve('../../assets/data/fashion-mnist-10k'),
};

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * An 8-bit PNG of gray (1 channel) or RGB (3 channels) pixels.
 *
 * @param width - pixels per row
 * @param height - rows
 * @param channels - 1 or 3
 * @param pixels - row-major, channels interleaved
 * @returns the PNG file's bytes
 */
export function encodePng(width: number, height: number, channels: 1 | 3, pixels: Uint8Array): Uint8Array {
  const rowBytes = width * channels;
  const raw = new Uint8Array(height * (rowBytes + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, channels === 1 ? 0 : 2, 0, 0, 0], 8);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))];
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * A grid of gray tiles as PNG: each tile [h, w] of values scaled to 0..255
 * by its own range (or by `range`), enlarged `scale` times, 2 px apart.
 *
 * @param tiles - row-major tiles, all [h, w]
 * @param options - tile size, columns, enlargement, a fixed value range
 * @returns the PNG file's bytes
 */
export function tileGridPng(
  tiles: readonly Float32Array[],
  options: { height: number; width: number; columns: number; scale: number; range?: [number, number] },
): Uint8Array {
  const { height, width, columns, scale } = options;
  const gap = 2;
  const rows = Math.ceil(tiles.length / columns);
  const tileHeight = height * scale;
  const tileWidth = width * scale;
  const imageWidth = columns * tileWidth + (columns - 1) * gap;
  const imageHeight = rows * tileHeight + (rows - 1) * gap;
  const pixels = new Uint8Array(imageWidth * imageHeight).fill(255);
  tiles.forEach((tile, index) => {
    let [low, high] = options.range ?? [Infinity, -Infinity];
    if (!options.range) for (const v of tile) [low, high] = [Math.min(low, v), Math.max(high, v)];
    const span = high - low || 1;
    const top = Math.floor(index / columns) * (tileHeight + gap);
    const left = (index % columns) * (tileWidth + gap);
    for (let y = 0; y < tileHeight; y++) {
      for (let x = 0; x < tileWidth; x++) {
        const value = tile[Math.floor(y / scale) * width + Math.floor(x / scale)]!;
        pixels[(top + y) * imageWidth + left + x] = Math.round(255 * Math.min(1, Math.max(0, (value - low) / span)));
      }
    }
  });
  return encodePng(imageWidth, imageHeight, 1, pixels);
}

/**
 * Images [N, C, H, W] in [-1, 1] (first channel) as a PNG grid.
 *
 * @param images - model input
 * @param columns - tiles per row
 * @param scale - enlargement
 * @returns the PNG file's bytes
 */
export function imagesPng(images: HostTensor, columns = 8, scale = 3): Uint8Array {
  const [n, c, h, w] = images.shape as [number, number, number, number];
  const data = images.contiguous().toArray();
  const tiles = Array.from({ length: n }, (_, i) => Float32Array.from(data.slice(i * c * h * w, i * c * h * w + h * w)));
  return tileGridPng(tiles, { height: h, width: w, columns, scale, range: [-1, 1] });
}

/**
 * Feature maps [N, C, h, w] as a PNG grid of their channel means (one tile per
 * image, each scaled by its own range), enlarged to about `size` pixels.
 *
 * @param features - block outputs
 * @param columns - tiles per row
 * @param size - tile side in pixels
 * @returns the PNG file's bytes
 */
export function featureMapsPng(features: HostTensor, columns = 8, size = 56): Uint8Array {
  const [n, c, h, w] = features.shape as [number, number, number, number];
  const data = features.contiguous().toArray();
  const tiles = Array.from({ length: n }, (_, i) => {
    const tile = new Float32Array(h * w);
    for (let k = 0; k < c; k++) for (let p = 0; p < h * w; p++) tile[p] = tile[p]! + data[(i * c + k) * h * w + p]! / c;
    return tile;
  });
  return tileGridPng(tiles, { height: h, width: w, columns, scale: Math.max(1, Math.round(size / h)) });
}

/**
 * Rows of a [N, ...] tensor, in the given order (a minibatch).
 *
 * @param tensor - float32 [N, ...]
 * @param indices - row numbers
 * @returns float32 [indices.length, ...]
 */
export function rows(tensor: HostTensor<'float32'>, indices: readonly number[]): HostTensor<'float32'> {
  const [count, ...rest] = tensor.shape;
  const width = tensor.size / count!;
  const data = tensor.contiguous().data;
  const out = new Float32Array(indices.length * width);
  indices.forEach((row, i) => out.set(data.subarray(row * width, (row + 1) * width), i * width));
  return HostTensor.from('float32', [indices.length, ...rest], out);
}

/**
 * int64 labels of some rows.
 *
 * @param labels - every row's class
 * @param indices - row numbers
 * @returns int64 [indices.length]
 */
export function labelRows(labels: readonly number[], indices: readonly number[]): HostTensor<'int64'> {
  return HostTensor.from(
    'int64',
    [indices.length],
    indices.map((i) => BigInt(labels[i]!)),
  );
}
