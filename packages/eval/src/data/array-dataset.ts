import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';
import { checkIndex, type Dataset } from './dataset.js';

/** Options of {@link arrayDataset}. @public */
export interface ArrayDatasetOptions {
  /** uint8 pixels, [N,H,W] (gray) or [N,C,H,W] with C = 1 or 3. */
  images: HostTensor<'uint8'>;
  /** One class index per image. */
  labels: ArrayLike<number> | BigInt64Array;
  /** Class names, or the number of classes (named `0`, `1`, ...). */
  classes: readonly string[] | number;
  /** Names the data in messages (default `array`). */
  name?: string;
}

/**
 * Class names `0`..`count-1`.
 *
 * @param count - the number of classes
 * @returns the names
 * @public
 */
export function numberedClasses(count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(i));
}

/**
 * A dataset over in-memory uint8 images. `get(i)` returns a view of image `i`
 * (no copy; do not modify it).
 *
 * @param options - images, labels and classes
 * @returns the dataset
 * @throws `ShapeError` for images that are not [N,H,W] or [N,C,H,W] uint8 with C = 1 or 3, or a label count that differs from N;
 *   `ConfigError` for a label outside the classes
 * @example
 * ```ts
 * const data = arrayDataset({ images: HostTensor.zeros('uint8', [2, 28, 28]), labels: [0, 1], classes: 10 });
 * ```
 * @public
 */
export function arrayDataset(options: ArrayDatasetOptions): Dataset {
  const name = options.name ?? 'array';
  const { images } = options;
  if (images.dtype !== 'uint8' || (images.rank !== 3 && images.rank !== 4)) {
    throw new ShapeError(`${name}: expected uint8 images [N,H,W] or [N,C,H,W]; found ${images.dtype}[${images.shape.join(', ')}]`);
  }
  const shape4 = images.rank === 3 ? [images.shape[0]!, 1, images.shape[1]!, images.shape[2]!] : [...images.shape];
  const [count, channels, height, width] = shape4 as [number, number, number, number];
  if (channels !== 1 && channels !== 3) throw new ShapeError(`${name}: expected 1 or 3 channels; found ${channels} in [${images.shape.join(', ')}]`);
  const labelCount = options.labels.length;
  if (labelCount !== count) throw new ShapeError(`${name}: expected one label per image (${count}); found ${labelCount} labels`);
  const classes = typeof options.classes === 'number' ? numberedClasses(options.classes) : [...options.classes];
  if (classes.length === 0) throw new ConfigError(`${name}: expected at least one class; found none`);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = Number(options.labels[i]!);
    if (!Number.isInteger(label) || label < 0 || label >= classes.length) {
      throw new ConfigError(`${name}: label ${label} of image ${i} is outside the ${classes.length} classes (0..${classes.length - 1})`);
    }
    labels[i] = label;
  }
  const data = images.contiguous().data;
  const imageSize = channels * height * width;
  const imageShape = [channels, height, width] as const;
  return {
    length: count,
    classes,
    imageShape,
    label(index) {
      checkIndex(index, count, name);
      return labels[index]!;
    },
    source(index) {
      checkIndex(index, count, name);
      return `${name} #${index}`;
    },
    async get(index) {
      checkIndex(index, count, name);
      const image = new HostTensor('uint8', data.subarray(index * imageSize, (index + 1) * imageSize), imageShape);
      return { image, label: labels[index]!, source: `${name} #${index}` };
    },
  };
}
