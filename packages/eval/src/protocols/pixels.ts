import { ConfigError, type BuildContext, type Module, type SymbolicTensor } from '@diffssl/core';
import { LinearHead } from '@diffssl/pool';
import { loadBatch, type BatchOptions } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import type { ClassifierGraph, ClassifierInput, ExampleSource } from '../training/classifier-graph.js';

/** The input name of raw pixels. */
export const PIXELS = 'pixels';

/**
 * The raw-pixel baseline: a Linear layer on the flattened pixels in [-1, 1]
 * (the 784 gray pixels of Fashion-MNIST; gray images keep one channel).
 * It is a {@link LinearHead} whose pooling keeps the full size, so its names
 * are `fcs.0.weight` and `fcs.0.bias`.
 *
 * @public
 */
export class PixelClassifier implements ClassifierGraph {
  /** The Linear head. */
  readonly head: LinearHead;
  private readonly shape: readonly [number, number, number];

  /**
   * @param imageShape - [C, H, W] of the images (square)
   * @param numClasses - number of classes
   * @param seed - initialization seed
   * @throws `ConfigError` for non-square images
   */
  constructor(
    imageShape: readonly [number, number, number],
    readonly numClasses: number,
    seed = 0,
  ) {
    const [channels, height, width] = imageShape;
    if (height !== width) throw new ConfigError(`pixels: expected square images; found ${height}x${width}`);
    this.shape = imageShape;
    this.head = new LinearHead({ channels, numClasses, prePoolSize: height, seed });
  }

  /** The Linear head. */
  modules(): Module[] {
    return [this.head];
  }

  /** `pixels` [C, H, W]. */
  inputs(): ReadonlyMap<string, ClassifierInput> {
    return new Map([[PIXELS, { dtype: 'float32', shape: this.shape }]]);
  }

  /** The logits of the flattened pixels. */
  forward(context: BuildContext, inputs: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor {
    return this.head.forward(context, inputs.get(PIXELS)!);
  }
}

/**
 * A dataset as raw-pixel input (`pixels` [B, C, H, W] in [-1, 1], gray kept
 * as one channel).
 *
 * @public
 */
export function pixelSource(
  dataset: Dataset,
  options: Omit<BatchOptions, 'channels' | 'epoch'> = {},
): ExampleSource & {
  /** [C, H, W] of the images. */
  imageShape: [number, number, number];
} {
  const shape = dataset.imageShape;
  if (!shape) throw new ConfigError('pixels: the raw-pixel baseline needs images of one fixed size (IDX or array data)');
  return {
    length: dataset.length,
    imageShape: [shape[0], shape[1], shape[2]],
    label: (index) => dataset.label(index),
    async read(indices, when) {
      const batch = await loadBatch(dataset, indices, { ...options, channels: shape[0] === 1 ? 1 : 3, epoch: when.training ? when.epoch : 0 });
      return { [PIXELS]: batch.images };
    },
  };
}
