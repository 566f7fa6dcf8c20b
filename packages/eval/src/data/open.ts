import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@diffssl/core';
import { takeFirst, type Dataset } from './dataset.js';
import { hasIdxFiles, readIdxDataset, type IdxSplit } from './idx.js';
import { listClassFolders, readImageFolder } from './image-folder.js';
import { readSubsetList, selectSubsetList } from './subset-list.js';

/** Options of {@link openDataset}. @public */
export interface OpenDatasetOptions {
  /** `train`, or `test` (IDX `t10k-*`; folder `val/`, else `test/`). */
  split: IdxSplit;
  /** Keep the first N examples (after the subset list), in the dataset's order. */
  limit?: number;
  /** Class names for IDX data (default `0`..`9`). Image folders name their classes. */
  classes?: readonly string[];
  /** A subset list file ({@link readSubsetList}) selecting examples of an image folder. */
  subsetList?: string;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/**
 * Opens one split of a data directory, recognizing its layout:
 *
 * - MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`, `t10k-...`):
 *   {@link readIdxDataset};
 * - image folders `train/<class>/*` and `val/<class>/*` (or `test/<class>/*`):
 *   {@link readImageFolder}; the test split is labeled with the training
 *   split's classes when `train/` exists, so indices agree.
 *
 * @param directory - the data directory
 * @param options - split, limit, IDX class names and subset list
 * @returns the dataset
 * @throws `ConfigError` for a missing directory, an unrecognized layout, or a subset list on IDX data; the readers' errors
 * @example
 * ```ts
 * const train = await openDataset('assets/data/fashion-mnist-10k', { split: 'train', classes: FASHION_MNIST_CLASSES, limit: 1000 });
 * ```
 * @public
 */
export async function openDataset(directory: string, options: OpenDatasetOptions): Promise<Dataset> {
  if (!isDirectory(directory)) throw new ConfigError(`data: ${directory} is not a directory`);
  const { split } = options;
  if (split !== 'train' && split !== 'test') throw new ConfigError(`data: split must be 'train' or 'test'; found '${String(split)}'`);
  let dataset: Dataset;
  if (hasIdxFiles(directory, split)) {
    if (options.subsetList) throw new ConfigError(`data: subset lists name image files; ${directory} holds IDX data (use a limit instead)`);
    dataset = await readIdxDataset(directory, { split, ...(options.classes ? { classes: options.classes } : {}) });
  } else {
    const trainFolder = join(directory, 'train');
    const testFolder = [join(directory, 'val'), join(directory, 'test')].find(isDirectory);
    const folder = split === 'train' ? (isDirectory(trainFolder) ? trainFolder : undefined) : testFolder;
    if (!folder) {
      const expected =
        split === 'train'
          ? 'train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz], or a train/<class>/ folder'
          : 't10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz], or a val/<class>/ (or test/<class>/) folder';
      throw new ConfigError(`data: ${directory} has no ${split} split; expected ${expected}`);
    }
    const classes = split === 'test' && isDirectory(trainFolder) ? await listClassFolders(trainFolder) : undefined;
    const images = await readImageFolder(folder, classes ? { classes } : {});
    dataset = options.subsetList ? selectSubsetList(images, await readSubsetList(options.subsetList)) : images;
  }
  return options.limit === undefined ? dataset : takeFirst(dataset, options.limit);
}
