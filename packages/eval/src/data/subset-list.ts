import { readFile } from 'node:fs/promises';
import { ConfigError } from '@diffssl/core';
import { subsetDataset, type Dataset } from './dataset.js';
import type { ImageFolderDataset } from './image-folder.js';

/**
 * Reads a subset list in the reference's format (its ImageNet 1% / 10% label
 * lists): one image file name per line, e.g. `n01440764_10026.JPEG`, or a path
 * relative to the split folder, e.g. `n01440764/n01440764_10026.JPEG`. Blank
 * lines are skipped; surrounding whitespace (and `\r`) is ignored.
 *
 * @param path - the list file
 * @returns the names, in file order
 * @throws `ConfigError` when the file cannot be read, holds no names or names one file twice
 * @public
 */
export async function readSubsetList(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`subset list: cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
  const names = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length === 0) throw new ConfigError(`subset list: ${path} holds no file names; expected one image file name per line`);
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new ConfigError(`subset list: ${path} names ${name} more than once`);
    seen.add(name);
  }
  return names;
}

/**
 * The examples of an image folder named by a subset list, in the folder's
 * order (sorted class, then path), for semi-supervised runs. A name matches
 * the file with that base name, or, when it contains `/`, the file with that
 * path relative to the folder.
 *
 * @param dataset - an image folder dataset ({@link readImageFolder})
 * @param names - the list ({@link readSubsetList})
 * @returns the view with one example per name
 * @throws `ConfigError` listing a few names that match no file (and how many), or a base name that matches several files
 * @example
 * ```ts
 * const train = await readImageFolder('imagenet/train');
 * const onePercent = selectSubsetList(train, await readSubsetList('1percent.txt'));
 * ```
 * @public
 */
export function selectSubsetList(dataset: ImageFolderDataset, names: readonly string[]): Dataset {
  const byPath = new Map<string, number>();
  const byBaseName = new Map<string, number[]>();
  dataset.files.forEach((file, index) => {
    byPath.set(file, index);
    const baseName = file.slice(file.lastIndexOf('/') + 1);
    const list = byBaseName.get(baseName);
    if (list) list.push(index);
    else byBaseName.set(baseName, [index]);
  });
  const chosen: number[] = [];
  const unknown: string[] = [];
  for (const name of names) {
    if (name.includes('/')) {
      const index = byPath.get(name.replace(/^\.\//, ''));
      if (index === undefined) unknown.push(name);
      else chosen.push(index);
      continue;
    }
    const matches = byBaseName.get(name);
    if (!matches) unknown.push(name);
    else if (matches.length > 1) {
      throw new ConfigError(
        `subset list: ${name} matches ${matches.length} files in ${dataset.directory} (${matches
          .slice(0, 3)
          .map((i) => dataset.files[i])
          .join(', ')}); name it as <class>/<file>`,
      );
    } else chosen.push(matches[0]!);
  }
  if (unknown.length > 0) {
    throw new ConfigError(
      `subset list: ${unknown.length} of ${names.length} names are not files of ${dataset.directory}, e.g. ${unknown.slice(0, 5).join(', ')}`,
    );
  }
  const unique = [...new Set(chosen)].sort((a, b) => a - b);
  return subsetDataset(dataset, unique);
}
