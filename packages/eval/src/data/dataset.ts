import { ConfigError, type HostTensor } from '@diffssl/core';

/**
 * One labeled image of a {@link Dataset}.
 *
 * @public
 */
export interface Example {
  /** uint8 [C,H,W] pixels, C = 1 (gray) or 3 (RGB), as PIL's `convert('RGB')` gives them (gray kept as one channel). */
  image: HostTensor<'uint8'>;
  /** Class index into {@link Dataset.classes}. */
  label: number;
  /** Where the image came from, for messages (a file path, or `file #index`). */
  source: string;
}

/**
 * A labeled image dataset: a fixed number of examples, each decoded on
 * demand. Readers: {@link readIdxDataset} (MNIST / Fashion-MNIST IDX),
 * {@link readImageFolder} (class subfolders of JPEG/PNG files),
 * {@link arrayDataset} (in-memory arrays); views: {@link subsetDataset},
 * {@link selectSubsetList}. {@link loadBatch} and {@link iterateBatches} turn
 * it into model input.
 *
 * @public
 */
export interface Dataset {
  /** Number of examples. */
  readonly length: number;
  /** Class names; labels index this list. */
  readonly classes: readonly string[];
  /** [C,H,W] of every image when the format fixes it (IDX, arrays); undefined when images may differ (folders). */
  readonly imageShape: readonly [number, number, number] | undefined;
  /**
   * The label of example `index`, without decoding the image.
   *
   * @throws `ConfigError` for an index outside 0..length-1
   */
  label(index: number): number;
  /**
   * A description of example `index` for messages (file path or `file #index`).
   *
   * @throws `ConfigError` for an index outside 0..length-1
   */
  source(index: number): string;
  /**
   * Example `index`, decoded.
   *
   * @throws `ConfigError` for an index outside 0..length-1; `FormatError` when the image cannot be decoded
   */
  get(index: number): Promise<Example>;
}

/**
 * Throws unless `index` is an integer in 0..length-1.
 *
 * @throws `ConfigError` naming the dataset size
 */
export function checkIndex(index: number, length: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new ConfigError(`${what}: index ${index} is outside 0..${length - 1} (${length} examples)`);
  }
}

/**
 * A view of some examples of a dataset, in the given order (indices may not
 * repeat). Example `i` of the view is example `indices[i]` of `dataset`.
 *
 * @param dataset - the underlying dataset
 * @param indices - indices into `dataset`
 * @returns the view (no image is decoded or copied)
 * @throws `ConfigError` for an index outside the dataset or a repeated index
 * @example
 * ```ts
 * const first1000 = subsetDataset(train, Array.from({ length: 1000 }, (_, i) => i));
 * ```
 * @public
 */
export function subsetDataset(dataset: Dataset, indices: readonly number[]): Dataset {
  const seen = new Set<number>();
  for (const index of indices) {
    checkIndex(index, dataset.length, 'subsetDataset');
    if (seen.has(index)) throw new ConfigError(`subsetDataset: index ${index} appears more than once`);
    seen.add(index);
  }
  const chosen = Int32Array.from(indices);
  const map = (index: number): number => {
    checkIndex(index, chosen.length, 'subset');
    return chosen[index]!;
  };
  return {
    length: chosen.length,
    classes: dataset.classes,
    imageShape: dataset.imageShape,
    label: (index) => dataset.label(map(index)),
    source: (index) => dataset.source(map(index)),
    get: (index) => dataset.get(map(index)),
  };
}

/**
 * The first `limit` examples of a dataset in its own order (file order for
 * IDX; sorted class, then sorted file name, for folders), or the dataset itself
 * when it has no more than `limit`.
 *
 * @param dataset - the dataset
 * @param limit - how many to keep (a positive integer)
 * @returns the view
 * @throws `ConfigError` for a limit that is not a positive integer
 * @public
 */
export function takeFirst(dataset: Dataset, limit: number): Dataset {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ConfigError(`limit: expected a positive integer; found ${limit}`);
  if (limit >= dataset.length) return dataset;
  return subsetDataset(
    dataset,
    Array.from({ length: limit }, (_, i) => i),
  );
}
