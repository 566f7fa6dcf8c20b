/**
 * Publishing files and folders atomically (Node only): a writer prepares its
 * result under a private temporary name beside the target and renames it into
 * place, so a reader sees a complete entry or none, never a part, and a crash
 * leaves only a temporary name behind.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../errors.js';

/** How {@link publishAtomically} ended. @public */
export type PublishOutcome = 'published' | 'existing';

/** Options of {@link publishAtomically}. @public */
export interface PublishOptions {
  /**
   * Whether what lies at the target is a complete, valid entry. Given, the
   * first complete entry wins: one that another writer published first is
   * kept (the temporary is removed and `existing` returned), and an
   * incomplete one is moved aside and replaced. Without it, the temporary
   * replaces whatever lies at the target (the last writer wins).
   */
  isComplete?: (target: string) => Promise<boolean>;
  /** How many times the target is moved aside and the rename tried again while other writers race (default 8). */
  retries?: number;
}

/** Rename errors that mean "the target is taken": a non-empty folder (POSIX), or an entry in use (Windows). */
const TAKEN = new Set(['ENOTEMPTY', 'EEXIST', 'EISDIR', 'ENOTDIR', 'EPERM', 'EACCES', 'EBUSY']);

/**
 * A private temporary name beside `target` (same folder, so one `rename`
 * moves it into place): `.<name>.tmp-<pid>-<uuid>`.
 *
 * @param target - the file or folder to publish
 * @returns the temporary path
 * @public
 */
export function temporarySibling(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomUUID()}`);
}

function cannotPublish(target: string, cause: unknown): ConfigError {
  const error = cause as NodeJS.ErrnoException;
  return new ConfigError(`cannot write ${target}: ${error.code ?? ''} ${error.message}`.replace(/\s+/g, ' ').trim(), { cause });
}

/**
 * Moves a finished temporary file or folder to its target with one `rename`
 * (atomic on one file system). When the target is taken, by a folder or by an
 * entry another process holds, it follows `isComplete`: a complete entry
 * published first is kept; otherwise the target is moved aside to a private
 * name, removed, and the rename tried again. Processes and async writers
 * publishing the same target at once all succeed, and the target is always
 * one writer's complete entry. The temporary never outlives the call.
 *
 * @param temporary - the finished file or folder, beside `target` ({@link temporarySibling})
 * @param target - its final name
 * @param options - what counts as a complete entry, and the retries
 * @returns `published` when this writer's entry is now at the target, `existing` when another complete one was kept
 * @throws {@link ConfigError} naming the target when it cannot be written (a missing or unwritable folder, or more racing writers than `retries`)
 * @example
 * ```ts
 * const temporary = temporarySibling(entry);
 * await mkdir(temporary);
 * await writeFile(join(temporary, 'data.bin'), bytes);
 * await publishAtomically(temporary, entry, { isComplete: async (path) => existsSync(join(path, 'data.bin')) });
 * ```
 * @public
 */
export async function publishAtomically(temporary: string, target: string, options: PublishOptions = {}): Promise<PublishOutcome> {
  const retries = options.retries ?? 8;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(temporary, target);
        return 'published';
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (!TAKEN.has(code) || attempt >= retries) throw cannotPublish(target, error);
        if (options.isComplete && (await options.isComplete(target).catch(() => false))) return 'existing';
        const aside = `${temporarySibling(target)}.stale`;
        try {
          await rename(target, aside);
        } catch {
          // Another writer moved or replaced it first: try again.
        }
        await rm(aside, { recursive: true, force: true });
        // Windows holds a replaced file a moment after another process closed it.
        if (code === 'EPERM' || code === 'EACCES' || code === 'EBUSY') await new Promise((resolve) => setTimeout(resolve, 10 * (attempt + 1)));
      }
    }
  } finally {
    await rm(temporary, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Writes a file atomically: the data goes to a temporary file beside it,
 * which is then renamed over the target ({@link publishAtomically}), so
 * readers see the old file or the new one, never a part; of writers racing,
 * the last one wins. Missing parent folders are created.
 *
 * @param path - the target file
 * @param data - its new content
 * @throws {@link ConfigError} naming the path when it cannot be written (unwritable or missing folder, a file in the way)
 * @public
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temporary = temporarySibling(path);
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(temporary, data);
  } catch (cause) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw cannotPublish(path, cause);
  }
  await publishAtomically(temporary, path);
}
