import { existsSync, statSync, type Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { ConfigError, UnsupportedError } from '@diffssl/core';
import { checkIndex, type Dataset } from './dataset.js';
import { decodeImage } from './decode.js';

/** File extensions read as images (case-insensitive). */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);
/** Image extensions that torchvision's ImageFolder reads but this reader does not: an error, never a silently dropped image. */
const UNSUPPORTED_IMAGE_EXTENSIONS = new Set(['.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp', '.gif']);

/**
 * Python's string order (by code point), which is UTF-8 byte order; JavaScript's
 * default sort compares UTF-16 code units and differs above U+FFFF.
 *
 * @param a - first string
 * @param b - second string
 * @returns negative, zero or positive, as for `Array.prototype.sort`
 */
export function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * A {@link Dataset} read from class subfolders, with the relative path of each
 * file (`<class>/<file>`, `/`-separated) for subset lists.
 *
 * @public
 */
export interface ImageFolderDataset extends Dataset {
  /** The folder that holds the class subfolders. */
  readonly directory: string;
  /** Per example, its path relative to {@link ImageFolderDataset.directory}. */
  readonly files: readonly string[];
}

/** Options of {@link readImageFolder}. @public */
export interface ImageFolderOptions {
  /**
   * The class list to label with (e.g. the training split's, for a validation
   * split). Every subfolder must be one of them; classes without a subfolder
   * have no examples. Default: the sorted subfolder names.
   */
  classes?: readonly string[];
}

async function isDirectory(path: string, entry: Dirent): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** All files below `root` in torchvision's order: directories sorted by full path, files sorted within each. */
async function listFiles(root: string): Promise<string[]> {
  const directories: string[] = [];
  const filesOf = new Map<string, string[]>();
  const visit = async (relative: string): Promise<void> => {
    directories.push(relative);
    const files: string[] = [];
    filesOf.set(relative, files);
    const entries = await readdir(join(root, relative), { withFileTypes: true });
    for (const entry of entries) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (await isDirectory(join(root, child), entry)) await visit(child);
      else files.push(entry.name);
    }
  };
  await visit('');
  directories.sort(compareCodePoints);
  const out: string[] = [];
  for (const directory of directories) {
    for (const file of filesOf.get(directory)!.sort(compareCodePoints)) out.push(directory ? `${directory}/${file}` : file);
  }
  return out;
}

/** `stat` calls {@link folderFiles} keeps in flight. */
const STAT_CONCURRENCY = 256;

/** One file below a folder ({@link folderFiles}). @internal */
export interface FolderFile {
  /** Its path relative to the folder, `/`-separated. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Its modification time in milliseconds since the epoch (with the file system's sub-millisecond part). */
  modified: number;
}

/**
 * Every file below a folder, at any depth (following links to folders, as
 * {@link readImageFolder} does), with its size and modification time, in
 * torchvision's walk order. This is what the feature cache's identity of a
 * data folder covers: an edited, renamed, added or removed file changes it.
 * One `stat` per file, never a read of its bytes (see `datasetIdentity`).
 *
 * @param root - the folder
 * @returns the files
 * @throws the file system's error when the folder cannot be read
 * @internal
 */
export async function folderFiles(root: string): Promise<FolderFile[]> {
  const paths = await listFiles(root);
  const files: FolderFile[] = [];
  // Many stat calls in flight at once: a sequential walk of ImageNet's 1.3 million files would take minutes.
  for (let start = 0; start < paths.length; start += STAT_CONCURRENCY) {
    const chunk = paths.slice(start, start + STAT_CONCURRENCY);
    const infos = await Promise.all(chunk.map((path) => stat(join(root, path))));
    chunk.forEach((path, i) => files.push({ path, size: infos[i]!.size, modified: infos[i]!.mtimeMs }));
  }
  return files;
}

/**
 * The class subfolders of an image folder, sorted as Python sorts them (the
 * class order of torchvision's `ImageFolder`).
 *
 * @param directory - the folder holding the class subfolders
 * @returns the sorted subfolder names
 * @throws `ConfigError` when the directory is missing or has no subfolder
 * @public
 */
export async function listClassFolders(directory: string): Promise<string[]> {
  if (!existsSync(directory) || !statSync(directory).isDirectory()) throw new ConfigError(`image folder: ${directory} is not a directory`);
  const entries = await readdir(directory, { withFileTypes: true });
  const folders: string[] = [];
  for (const entry of entries) if (await isDirectory(join(directory, entry.name), entry)) folders.push(entry.name);
  if (folders.length === 0) throw new ConfigError(`image folder: ${directory} has no class subfolders; expected ${directory}/<class>/<image files>`);
  return folders.sort(compareCodePoints);
}

/**
 * Reads the file list of an image folder with one subfolder per class
 * (`<directory>/<class>/**` JPEG and PNG files, as torchvision's
 * `ImageFolder`): class indices follow the sorted class-folder names (Python's
 * order), examples are ordered by class, then by path. Images are decoded on
 * `get(i)` ({@link decodeImage}); nothing is decoded here. Other files are
 * skipped, as torchvision does, except image formats this reader does not
 * decode (BMP, TIFF, WebP, ...), which are an error rather than silently
 * dropped images.
 *
 * @param directory - the folder holding the class subfolders (e.g. `imagenet/train`)
 * @param options - a fixed class list
 * @returns the dataset
 * @throws `ConfigError` for a missing directory, no class subfolders, an empty class folder or a subfolder outside the given classes;
 *   `UnsupportedError` for image files of another format
 * @example
 * ```ts
 * const train = await readImageFolder('imagenet/train');
 * const val = await readImageFolder('imagenet/val', { classes: train.classes });
 * ```
 * @public
 */
export async function readImageFolder(directory: string, options: ImageFolderOptions = {}): Promise<ImageFolderDataset> {
  const folders = await listClassFolders(directory);
  const classes = options.classes ? [...options.classes] : folders;
  const classIndex = new Map(classes.map((name, index) => [name, index]));
  const unknown = folders.filter((folder) => !classIndex.has(folder));
  if (unknown.length > 0) {
    throw new ConfigError(
      `image folder: ${directory} has ${unknown.length} subfolder(s) outside the ${classes.length} given classes: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}`,
    );
  }
  const files: string[] = [];
  const labels: number[] = [];
  const unsupported: string[] = [];
  for (const folder of folders) {
    let count = 0;
    const unsupportedBefore = unsupported.length;
    for (const file of await listFiles(join(directory, folder))) {
      const extension = extname(file).toLowerCase();
      if (IMAGE_EXTENSIONS.has(extension)) {
        files.push(`${folder}/${file}`);
        labels.push(classIndex.get(folder)!);
        count++;
      } else if (UNSUPPORTED_IMAGE_EXTENSIONS.has(extension)) unsupported.push(`${folder}/${file}`);
    }
    if (count === 0 && unsupported.length === unsupportedBefore)
      throw new ConfigError(`image folder: class folder ${join(directory, folder)} has no .jpg, .jpeg or .png file`);
  }
  if (unsupported.length > 0) {
    throw new UnsupportedError(
      `image folder: ${directory} has ${unsupported.length} image file(s) in formats other than JPEG and PNG, e.g. ${unsupported.slice(0, 3).join(', ')}; convert them or remove them`,
    );
  }
  const labelArray = Int32Array.from(labels);
  const length = files.length;
  const path = (index: number): string => join(directory, files[index]!);
  return {
    directory,
    files,
    length,
    classes,
    imageShape: undefined,
    label(index) {
      checkIndex(index, length, directory);
      return labelArray[index]!;
    },
    source(index) {
      checkIndex(index, length, directory);
      return path(index);
    },
    async get(index) {
      checkIndex(index, length, directory);
      const file = path(index);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (cause) {
        throw new ConfigError(`cannot read image ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
      }
      return { image: await decodeImage(bytes, file), label: labelArray[index]!, source: file };
    },
  };
}
