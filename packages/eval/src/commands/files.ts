import { rename, rm, writeFile } from 'node:fs/promises';
import { ConfigError, writeSafetensors, type HostTensor } from '@diffssl/core';

/**
 * Writes tensors to a safetensors file through a temporary file and a rename,
 * so that a crash never leaves a half-written file.
 *
 * @throws `ConfigError` naming the path when it cannot be written
 */
export async function writeFileAtomically(path: string, tensors: ReadonlyMap<string, HostTensor>, metadata?: Record<string, string>): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, writeSafetensors(new Map(tensors), metadata));
    await rename(temporary, path);
  } catch (cause) {
    await rm(temporary, { force: true });
    throw new ConfigError(`cannot write ${path}: ${(cause as Error).message}`);
  }
}
