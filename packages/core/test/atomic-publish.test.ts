/**
 * The one atomic-publish helper (used by unet's compiled-model cache, eval's
 * feature cache and eval's reports): concurrent writers, in one process and in
 * several, always leave exactly one complete entry at the target, never a
 * partial one, and no temporary names behind.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, publishAtomically, temporarySibling, writeFileAtomic } from '../src/index.js';
import { entryIsComplete, entryWriter, writeEntry } from './atomic-entry.js';

const folder = () => mkdtempSync(join(tmpdir(), 'diffssl-atomic-'));
const WRITER = fileURLToPath(new URL('./atomic-publish-writer.ts', import.meta.url));

/** Polls `target` until `done()`; every time it exists, it must be a complete entry. Returns how many times it was seen. */
async function watchEntry(target: string, done: () => boolean): Promise<number> {
  let seen = 0;
  while (!done()) {
    if (existsSync(target)) {
      expect(await entryIsComplete(target), 'a reader saw a partial entry').toBe(true);
      seen++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return seen;
}

describe('publishAtomically', () => {
  it('publishes one complete entry when 24 async writers race, keeps the first, and leaves no temporary behind', async () => {
    const parent = folder();
    const target = join(parent, 'entry');
    let finished = false;
    const writers = Promise.all(Array.from({ length: 24 }, (_, i) => writeEntry(target, `writer ${i}`))).finally(() => (finished = true));
    const [outcomes, seen] = await Promise.all([writers, watchEntry(target, () => finished)]);
    expect(outcomes.filter((outcome) => outcome === 'published')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'existing')).toHaveLength(23);
    expect(seen).toBeGreaterThan(0);
    expect(await entryIsComplete(target)).toBe(true);
    expect(await entryWriter(target)).toBe(`writer ${outcomes.indexOf('published')}`);
    expect(readdirSync(parent)).toEqual(['entry']);
  });

  it('publishes one complete entry when 4 processes of 6 writers each race', async () => {
    const parent = folder();
    const target = join(parent, 'entry');
    let finished = false;
    const run = (name: string) => promisify(execFile)(process.execPath, ['--import', 'tsx', WRITER, target, name, '6'], { timeout: 120_000 });
    const processes = Promise.all(['a', 'b', 'c', 'd'].map(run)).finally(() => (finished = true));
    const [results] = await Promise.all([processes, watchEntry(target, () => finished)]);
    const outcomes = results.flatMap(({ stdout }) => JSON.parse(stdout) as string[]);
    expect(outcomes).toHaveLength(24);
    expect(outcomes.filter((outcome) => outcome === 'published')).toHaveLength(1);
    expect(await entryIsComplete(target)).toBe(true);
    expect(await entryWriter(target)).toMatch(/^[abcd]\/[0-5]$/);
    expect(readdirSync(parent)).toEqual(['entry']);
  });

  it('replaces an incomplete entry left by a crash, while writers race', async () => {
    const parent = folder();
    const target = join(parent, 'entry');
    mkdirSync(target);
    writeFileSync(join(target, 'payload.bin'), 'half of a payload, no manifest');
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => writeEntry(target, `writer ${i}`)));
    expect(outcomes.filter((outcome) => outcome === 'published').length).toBeGreaterThanOrEqual(1);
    expect(await entryIsComplete(target)).toBe(true);
    expect(readdirSync(parent)).toEqual(['entry']);
  });

  it('without isComplete, the last writer replaces a folder in the way', async () => {
    const parent = folder();
    const target = join(parent, 'entry');
    mkdirSync(target);
    writeFileSync(join(target, 'old.txt'), 'old');
    const temporary = temporarySibling(target);
    mkdirSync(temporary);
    writeFileSync(join(temporary, 'new.txt'), 'new');
    expect(await publishAtomically(temporary, target)).toBe('published');
    expect(readdirSync(target)).toEqual(['new.txt']);
    expect(readdirSync(parent)).toEqual(['entry']);
  });

  it('names the target in a one-line ConfigError when it cannot be written, and removes the temporary', async () => {
    const parent = folder();
    const temporary = temporarySibling(join(parent, 'entry'));
    mkdirSync(temporary);
    const error = await publishAtomically(temporary, join(parent, 'missing', 'entry')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^cannot write .*missing\/entry: ENOENT/);
    expect(readdirSync(parent)).toEqual([]);
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file whole while 16 writers and a reader race: the reader sees one whole version or another, never a mix', async () => {
    const parent = folder();
    const path = join(parent, 'nested', 'file.bin');
    // Each version is 256 KiB of one repeated byte, so a torn read shows as two different bytes.
    const versions = Array.from({ length: 16 }, (_, i) => new Uint8Array(256 * 1024).fill(i + 1));
    let finished = false;
    const reads: number[] = [];
    const reader = (async () => {
      while (!finished) {
        const bytes = await readFile(path).catch(() => undefined);
        if (bytes) {
          expect(bytes.length).toBe(256 * 1024);
          expect(
            bytes.every((byte) => byte === bytes[0]),
            'a torn read',
          ).toBe(true);
          reads.push(bytes[0]!);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await Promise.all(versions.map((version) => writeFileAtomic(path, version))).finally(() => (finished = true));
    await reader;
    const final = await readFile(path);
    expect(final.length).toBe(256 * 1024);
    expect(final.every((byte) => byte === final[0])).toBe(true);
    expect(final[0]).toBeGreaterThanOrEqual(1);
    expect(final[0]).toBeLessThanOrEqual(16);
    expect(readdirSync(join(parent, 'nested'))).toEqual(['file.bin']);
  });

  it('replaces a longer file by a shorter one and names an unwritable path in one line', async () => {
    const parent = folder();
    const path = join(parent, 'file.txt');
    await writeFileAtomic(path, 'first version, longer than the second');
    await writeFileAtomic(path, 'second');
    expect(await readFile(path, 'utf8')).toBe('second');
    const blocker = join(parent, 'a-file');
    await writeFile(blocker, '');
    const error = await writeFileAtomic(join(blocker, 'run', 'report.json'), '{}').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^cannot write .*a-file\/run\/report\.json: ENOTDIR/);
    expect((error as Error).message).not.toContain('\n');
    expect(readdirSync(parent).sort()).toEqual(['a-file', 'file.txt']);
  });
});
