import { join } from 'node:path';
import { writeFileAtomic } from '@diffssl/core';

/**
 * Writes the files of a report into one folder, each atomically (core's
 * `writeFileAtomic`: readers see the old file or the new one, never a part),
 * in the order given.
 *
 * @param directory - the folder (created when missing)
 * @param files - file name and content pairs
 * @returns the paths written
 * @throws `ConfigError` naming a path that cannot be written
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
