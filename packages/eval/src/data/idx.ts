import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { ConfigError, FormatError, HostTensor } from '@diffssl/core';
import { numberedClasses } from './array-dataset.js';
import { checkIndex, type Dataset } from './dataset.js';

const gunzipAsync = promisify(gunzip);

/** Fashion-MNIST's class names in label order. @public */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

/** The split of an IDX directory: `train` (`train-*`) or `test` (`t10k-*`). @public */
export type IdxSplit = 'train' | 'test';

/** The contents of one IDX file. @public */
export interface IdxArray {
  /** The dimensions from the header. */
  dims: number[];
  /** The unsigned bytes after the header, row-major. */
  data: Uint8Array;
}

const IDX_UNSIGNED_BYTE = 0x08;

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Parses an IDX file of unsigned bytes (the MNIST format: magic `00 00 08 nd`,
 * `nd` big-endian uint32 dimensions, then the data) and checks that its size
 * is exactly what the header declares.
 *
 * @param bytes - the (already decompressed) file
 * @param file - the file name, for messages
 * @param expectedRank - the number of dimensions required (3 for images, 1 for labels)
 * @returns the dimensions and a view of the data
 * @throws `FormatError` naming the file for a bad magic number, a wrong rank, or a size other than the header's (truncated or trailing bytes)
 * @public
 */
export function parseIdx(bytes: Uint8Array, file: string, expectedRank: number): IdxArray {
  const kind = expectedRank === 1 ? 'labels' : 'images';
  if (bytes.length < 4) throw new FormatError(`${file}: expected an IDX header (4 bytes or more); found a file of ${bytes.length} bytes`);
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== IDX_UNSIGNED_BYTE || bytes[3] !== expectedRank) {
    throw new FormatError(
      `${file}: expected the IDX magic number 00 00 08 0${expectedRank} (unsigned bytes, ${expectedRank} dimension${expectedRank > 1 ? 's' : ''}, ${kind}); found ${hex(bytes.subarray(0, 4))}`,
    );
  }
  const headerSize = 4 + 4 * expectedRank;
  if (bytes.length < headerSize)
    throw new FormatError(`${file}: truncated: expected an IDX header of ${headerSize} bytes; found a file of ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: expectedRank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const dataSize = dims.reduce((a, b) => a * b, 1);
  const expectedSize = headerSize + dataSize;
  const what = `${dims[0]} ${kind}${expectedRank === 3 ? ` of ${dims[1]}x${dims[2]}` : ''}`;
  if (bytes.length < expectedSize) {
    throw new FormatError(`${file}: truncated: the header declares ${what}, ${expectedSize} bytes in all; found ${bytes.length} bytes`);
  }
  if (bytes.length > expectedSize) {
    throw new FormatError(
      `${file}: the header declares ${what}, ${expectedSize} bytes in all; found ${bytes.length} bytes (${bytes.length - expectedSize} unexpected bytes at the end)`,
    );
  }
  return { dims, data: bytes.subarray(headerSize) };
}

/**
 * Reads an IDX file, gunzipping it when it is gzip-compressed (detected from
 * the content, whatever the name).
 *
 * @param path - the file
 * @param expectedRank - 3 for images, 1 for labels
 * @returns the parsed file
 * @throws `ConfigError` when the file is missing; `FormatError` for corrupt gzip or IDX content
 * @public
 */
export async function readIdxFile(path: string, expectedRank: number): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new ConfigError(`cannot read IDX file ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (cause) {
      throw new FormatError(`${path}: corrupt gzip data (${(cause as Error).message}); the file is truncated or damaged`, { cause });
    }
  }
  // A plain Uint8Array view (not a Buffer) so that tensors over it behave like any other.
  return parseIdx(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path, expectedRank);
}

/** Options of {@link readIdxDataset}. @public */
export interface IdxDatasetOptions {
  /** `train` (`train-images-idx3-ubyte`, ...) or `test` (`t10k-...`). */
  split: IdxSplit;
  /** Keep only the first N examples in file order (all when the file has fewer). */
  limit?: number;
  /** Class names (labels must be below their count). Default `0`..`9`; pass {@link FASHION_MNIST_CLASSES} for Fashion-MNIST. */
  classes?: readonly string[];
}

/** The file names of a split, without `.gz`. */
export function idxFileNames(split: IdxSplit): { images: string; labels: string } {
  const prefix = split === 'train' ? 'train' : 't10k';
  return { images: `${prefix}-images-idx3-ubyte`, labels: `${prefix}-labels-idx1-ubyte` };
}

/**
 * The path of `name` or `name.gz` in `directory`, whichever exists (the
 * uncompressed one first), or undefined.
 */
function findIdxFile(directory: string, name: string): string | undefined {
  for (const candidate of [name, `${name}.gz`]) {
    const path = join(directory, candidate);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/**
 * Whether `directory` holds the IDX files of a split (gzipped or not).
 *
 * @param directory - the folder
 * @param split - which split
 * @returns true when both the images and the labels file exist
 * @public
 */
export function hasIdxFiles(directory: string, split: IdxSplit): boolean {
  const names = idxFileNames(split);
  return findIdxFile(directory, names.images) !== undefined && findIdxFile(directory, names.labels) !== undefined;
}

/**
 * Reads one split of an MNIST-style IDX directory (`train-images-idx3-ubyte`,
 * `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
 * `t10k-labels-idx1-ubyte`, each optionally `.gz`) into memory. Images are
 * gray, uint8 [1,H,W]; `get(i)` returns views (do not modify them).
 *
 * @param directory - the folder with the IDX files
 * @param options - split, limit and class names
 * @returns the dataset, in file order
 * @throws `ConfigError` for a missing directory or file or a bad limit;
 *   `FormatError` naming the file for corrupt or truncated files, image and label counts that differ, or a label outside the classes
 * @example
 * ```ts
 * const test = await readIdxDataset('assets/data/fashion-mnist-10k', { split: 'test', classes: FASHION_MNIST_CLASSES });
 * ```
 * @public
 */
export async function readIdxDataset(directory: string, options: IdxDatasetOptions): Promise<Dataset> {
  const { split } = options;
  if (split !== 'train' && split !== 'test') throw new ConfigError(`IDX data: split must be 'train' or 'test'; found '${String(split)}'`);
  if (options.limit !== undefined && (!Number.isSafeInteger(options.limit) || options.limit < 1)) {
    throw new ConfigError(`IDX data: limit must be a positive integer; found ${options.limit}`);
  }
  if (!existsSync(directory) || !statSync(directory).isDirectory()) throw new ConfigError(`IDX data: ${directory} is not a directory`);
  const names = idxFileNames(split);
  const paths = { images: findIdxFile(directory, names.images), labels: findIdxFile(directory, names.labels) };
  for (const key of ['images', 'labels'] as const) {
    if (!paths[key]) throw new ConfigError(`IDX data: ${directory} has no ${names[key]} or ${names[key]}.gz (the ${split} ${key})`);
  }
  const [images, labels] = await Promise.all([readIdxFile(paths.images!, 3), readIdxFile(paths.labels!, 1)]);
  const [imageCount, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== imageCount) {
    throw new FormatError(
      `IDX data: ${basename(paths.images!)} holds ${imageCount} images but ${basename(paths.labels!)} holds ${labels.dims[0]} labels; expected the same count`,
    );
  }
  const classes = options.classes ? [...options.classes] : numberedClasses(10);
  const count = Math.min(imageCount, options.limit ?? imageCount);
  for (let i = 0; i < count; i++) {
    const label = labels.data[i]!;
    if (label >= classes.length) {
      throw new FormatError(`${paths.labels}: label ${label} of example ${i} is outside the ${classes.length} classes (0..${classes.length - 1})`);
    }
  }
  const imageSize = height * width;
  const imageShape = [1, height, width] as const;
  const file = basename(paths.images!);
  return {
    length: count,
    classes,
    imageShape,
    label(index) {
      checkIndex(index, count, file);
      return labels.data[index]!;
    },
    source(index) {
      checkIndex(index, count, file);
      return `${file} #${index}`;
    },
    async get(index) {
      checkIndex(index, count, file);
      const image = new HostTensor('uint8', images.data.subarray(index * imageSize, (index + 1) * imageSize), imageShape);
      return { image, label: labels.data[index]!, source: `${file} #${index}` };
    },
  };
}
