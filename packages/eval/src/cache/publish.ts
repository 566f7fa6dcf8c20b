import { rename, rm } from 'node:fs/promises';
import type { FeatureCacheKey } from './key.js';
import { openFeatureCache, type FeatureCache } from './reader.js';

function isExistsError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EPERM';
}

/**
 * Moves a finished temporary entry to its final name (one `rename`, atomic on
 * one file system). When the final name is taken by a valid entry for the same
 * key (another process finished first), that one is kept and the temporary one
 * removed; an invalid one is moved aside and removed first.
 *
 * @param temporary - the finished folder, beside `final`
 * @param final - the entry's name
 * @param key - the key the entry was written for
 * @returns the published entry, opened and checked
 */
export async function publishEntry(temporary: string, final: string, key: FeatureCacheKey): Promise<FeatureCache> {
  try {
    await rename(temporary, final);
  } catch (error) {
    if (!isExistsError(error)) throw error;
    const existing = await openFeatureCache(final, key).catch(() => undefined);
    if (existing) {
      await rm(temporary, { recursive: true, force: true });
      return existing;
    }
    const stale = `${temporary}.stale`;
    await rename(final, stale);
    await rename(temporary, final);
    await rm(stale, { recursive: true, force: true });
  }
  return openFeatureCache(final, key);
}
