// A browser application's use of @diffssl/core, type-checked by browser-types.test.ts
// with the `browser` export condition. Each `@ts-expect-error` marks a Node-only name.
import { createRunner, DEFAULT_BROWSER_PROVIDERS, HostTensor, readSafetensors } from '@diffssl/core';
// @ts-expect-error saveModel writes files: Node only
import { saveModel } from '@diffssl/core';
// @ts-expect-error readSafetensorsFile reads files: Node only (readSafetensors takes bytes)
import { readSafetensorsFile } from '@diffssl/core';
// @ts-expect-error the Node default providers (cuda, cpu) are not the browser's
import { DEFAULT_NODE_PROVIDERS } from '@diffssl/core';
// @ts-expect-error publishAtomically renames files and folders: Node only
import { publishAtomically } from '@diffssl/core';
// @ts-expect-error writeFileAtomic writes files: Node only
import { writeFileAtomic } from '@diffssl/core';

export async function browserRunner(bytes: Uint8Array) {
  const { tensors } = readSafetensors(bytes);
  return { tensors, providers: DEFAULT_BROWSER_PROVIDERS, runner: await createRunner(bytes), zeros: HostTensor.zeros('float32', [1]) };
}

export const unused = [saveModel, readSafetensorsFile, DEFAULT_NODE_PROVIDERS, publishAtomically, writeFileAtomic] as const;
