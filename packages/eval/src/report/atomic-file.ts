import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '@diffssl/core';

/**
 * Writes a file atomically: the data goes to a temporary file beside it, which
 * is then renamed over the target, so readers see the old file or the new one,
 * never a part. Missing parent folders are created.
 *
 * @param path - the target file
 * @param data - its new content
 * @throws {@link @diffssl/core!ConfigError} naming the path when it cannot be written (unwritable or missing folder, a file in the way)
 * @public
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(temporary, data);
    await rename(temporary, path);
  } catch (cause) {
    await rm(temporary, { force: true }).catch(() => undefined);
    const error = cause as NodeJS.ErrnoException;
    throw new ConfigError(`cannot write ${path}: ${error.code ?? ''} ${error.message}`.replace(/\s+/g, ' ').trim(), { cause });
  }
}

/**
 * Writes the files of a report into one folder, each atomically
 * ({@link writeFileAtomic}), in the order given.
 *
 * @param directory - the folder (created when missing)
 * @param files - file name and content pairs
 * @returns the paths written
 */
export async function writeFilesAtomic(directory: string, files: Iterable<readonly [name: string, content: string]>): Promise<string[]> {
  const written: string[] = [];
  for (const [name, content] of files) {
    const path = join(directory, name);
    await writeFileAtomic(path, content);
    written.push(path);
  }
  return written;
}
