import { publishAtomically } from '@diffssl/core';
import type { FeatureCacheKey } from './key.js';
import { openFeatureCache, type FeatureCache } from './reader.js';

/**
 * Moves a finished temporary entry to its final name with core's
 * `publishAtomically` (one `rename`, atomic on one file system). When the
 * final name is taken by a valid entry for the same key (another process
 * finished first), that one is kept and the temporary one removed; an invalid
 * one is moved aside and replaced.
 *
 * @param temporary - the finished folder, beside `final`
 * @param final - the entry's name
 * @param key - the key the entry was written for
 * @returns the published entry, opened and checked
 */
export async function publishEntry(temporary: string, final: string, key: FeatureCacheKey): Promise<FeatureCache> {
  const isComplete = async (path: string) => {
    const existing = await openFeatureCache(path, key).catch(() => undefined);
    await existing?.close();
    return existing !== undefined;
  };
  await publishAtomically(temporary, final, { isComplete });
  return openFeatureCache(final, key);
}
