/**
 * A cache-like entry for the atomic-publish tests: a folder with a payload
 * written in slices (so that writers interleave) and a manifest naming its
 * writer and the payload's SHA-256. Shared by the test and its child-process
 * writers (`atomic-publish-writer.ts`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { publishAtomically, temporarySibling, type PublishOutcome } from '../src/io/atomic-publish.js';

/** The manifest of an entry. */
export interface Manifest {
  writer: string;
  sha256: string;
  bytes: number;
}

/** Whether `path` holds a complete entry: a manifest whose hash and size match the payload. */
export async function entryIsComplete(path: string): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8')) as Manifest;
    const payload = await readFile(join(path, 'payload.bin'));
    return payload.length === manifest.bytes && createHash('sha256').update(payload).digest('hex') === manifest.sha256;
  } catch {
    return false;
  }
}

/** The writer named in a complete entry's manifest. */
export async function entryWriter(path: string): Promise<string> {
  return (JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8')) as Manifest).writer;
}

/** Writes an entry under a temporary name, slice by slice, and publishes it at `target` (the first complete entry wins). */
export async function writeEntry(target: string, writer: string): Promise<PublishOutcome> {
  const temporary = temporarySibling(target);
  await mkdir(temporary);
  const payload = randomBytes(64 * 1024 + Math.floor(Math.random() * 1024));
  for (let offset = 0; offset < payload.length; offset += 16 * 1024) {
    await appendFile(join(temporary, 'payload.bin'), payload.subarray(offset, offset + 16 * 1024));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const manifest: Manifest = { writer, sha256: createHash('sha256').update(payload).digest('hex'), bytes: payload.length };
  await writeFile(join(temporary, 'manifest.json'), JSON.stringify(manifest));
  return publishAtomically(temporary, target, { isComplete: entryIsComplete });
}
