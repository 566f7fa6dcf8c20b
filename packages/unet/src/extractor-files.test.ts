/**
 * Files the Node extractor writes: temporary external-data folders (removed on
 * release, at exit and on SIGTERM) and compiled-model cache entries (keyed by
 * the package versions and the graph-building code's version; built by
 * several processes at once without failing or leaving debris).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostTensor } from '@diffssl/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { embeddedFlags, EMBEDDED_MODEL } from '@diffssl/testing';
import { AdmUNet, createFeatureExtractor, featureKey, readTorchCheckpoint, type ExtractorSetupProgress, type GuidedDiffusionFlags } from './index.js';
import { EXTRACTION_GRAPH_VERSION } from './extractor.js';

const flags = embeddedFlags() as unknown as GuidedDiffusionFlags;
const cpu = { executionProviders: ['cpu'] as const };
const images = HostTensor.from(
  'float32',
  [2, 3, 28, 28],
  Array.from({ length: 2 * 3 * 28 * 28 }, (_, i) => Math.sin(i) * 0.8),
);
const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/${name}`, import.meta.url));
/** Our folders only: other tools (tsx, ONNX Runtime) leave files in TMPDIR too. */
const ours = (folder: string) => readdirSync(folder).filter((name) => name.startsWith('diffssl-'));

let unet: AdmUNet;
beforeAll(async () => {
  unet = new AdmUNet(flags, await readTorchCheckpoint(EMBEDDED_MODEL.checkpoint));
});

const previousTemporary = process.env.TMPDIR;
afterEach(() => {
  if (previousTemporary === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previousTemporary;
});

function child(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=@diffssl/source', '--import', 'tsx', fixture(script), ...args],
      { env: { ...process.env, ...env }, timeout: 90_000 },
      (error, stdout, stderr) => {
        resolve({
          code: error ? ((error as { code?: number }).code ?? null) : 0,
          signal: error ? ((error as { signal?: NodeJS.Signals }).signal ?? null) : null,
          stdout,
          stderr,
        });
      },
    );
  });
}

describe('temporary model folders', () => {
  it('loads a large model from a temporary folder with external data and removes the folder on release', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'diffssl-tmp-'));
    process.env.TMPDIR = folder;
    const external = await createFeatureExtractor({ unet, blocks: [5], timesteps: [150], externalDataThreshold: 0, runner: cpu });
    const inline = await createFeatureExtractor({ unet, blocks: [5], timesteps: [150], runner: cpu });
    const [created] = ours(folder);
    expect(created).toMatch(/^diffssl-unet-/);
    expect(readdirSync(join(folder, created!)).sort()).toEqual(['model.onnx', 'model.onnx.data']);
    const a = (await external.extract(images, { ids: [0, 1] })).get(featureKey(150, 5))!;
    const b = (await inline.extract(images, { ids: [0, 1] })).get(featureKey(150, 5))!;
    expect(a.toArray()).toEqual(b.toArray());
    await external.release();
    await inline.release();
    expect(ours(folder)).toEqual([]);
    await external.release(); // twice is harmless
  });

  it.each(['exit', 'sigterm'])('removes the folder when the process ends without release (%s)', async (mode) => {
    const folder = mkdtempSync(join(tmpdir(), 'diffssl-tmp-'));
    const result = await child('unreleased-extractor.ts', [mode], { TMPDIR: folder });
    expect(result.stdout, result.stderr).toMatch(/^created diffssl-unet-\w+ on cpu\n$/);
    if (mode === 'sigterm') expect(result.signal).toBe('SIGTERM');
    else expect(result.code).toBe(0);
    expect(ours(folder)).toEqual([]);
  });
});

describe('compiled-model cache', () => {
  it('keys entries by the package versions and the graph-building code version (key.json beside the model)', async () => {
    const cacheDirectory = mkdtempSync(join(tmpdir(), 'diffssl-cache-'));
    const extractor = await createFeatureExtractor({ unet, blocks: [7, 3], timesteps: [150], runner: cpu, cacheDirectory });
    await extractor.release();
    const [entry] = readdirSync(cacheDirectory);
    const keyText = readFileSync(join(cacheDirectory, entry!, 'key.json'), 'utf8');
    const key = JSON.parse(keyText) as { versions: { unet: string; core: string }; graph: number; blocks: number[]; dtype: string };
    const version = (path: string) => (JSON.parse(readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8')) as { version: string }).version;
    expect(key.versions).toEqual({ unet: version('../package.json'), core: version('../../core/package.json') });
    expect(key.graph).toBe(EXTRACTION_GRAPH_VERSION);
    expect(key.blocks).toEqual([3, 7]);
    expect(key.dtype).toBe('float32');
    expect(entry).toBe(`unet-${createHash('sha256').update(keyText).digest('hex').slice(0, 24)}`);
    expect(readdirSync(join(cacheDirectory, entry!)).sort()).toEqual(['info.json', 'key.json', 'model.onnx']);
  });

  it('reports each setup step: read, build, save, session and ready; then the cached model reused', async () => {
    const cacheDirectory = mkdtempSync(join(tmpdir(), 'diffssl-cache-'));
    const events: ExtractorSetupProgress[] = [];
    const options = {
      checkpoint: EMBEDDED_MODEL.checkpoint,
      config: flags,
      blocks: [4],
      timesteps: [50],
      runner: cpu,
      cacheDirectory,
      onSetup: (event: ExtractorSetupProgress) => events.push(event),
    };
    const built = await createFeatureExtractor(options);
    await built.release();
    const stages = events.map((event) => event.stage);
    expect(stages.filter((stage) => stage !== 'read')).toEqual(['build', 'save', 'session', 'ready']);
    expect(stages.indexOf('read')).toBe(0);
    // The bytes read grow to every storage record of the checkpoint: about the file's size (the zip adds headers and the pickle).
    const reads = events.flatMap((event) => (event.stage === 'read' ? [event] : []));
    expect(reads.length).toBeGreaterThan(2);
    const last = reads.at(-1)!;
    expect(last.bytesRead).toBe(last.totalBytes);
    expect(last.totalBytes).toBeGreaterThan(0.95 * statSync(EMBEDDED_MODEL.checkpoint).size);
    expect(last.totalBytes).toBeLessThanOrEqual(statSync(EMBEDDED_MODEL.checkpoint).size);
    for (let i = 1; i < reads.length; i++) expect(reads[i]!.bytesRead).toBeGreaterThanOrEqual(reads[i - 1]!.bytesRead);
    const [entry] = readdirSync(cacheDirectory);
    expect(events.find((event) => event.stage === 'save')).toEqual({ stage: 'save', path: join(cacheDirectory, entry!) });
    expect(events.at(-1)).toMatchObject({ stage: 'ready', fromCache: false });

    events.length = 0;
    const cached = await createFeatureExtractor(options);
    await cached.release();
    expect(events.map((event) => event.stage)).toEqual(['cached', 'session', 'ready']);
    expect(events[0]).toEqual({ stage: 'cached', path: join(cacheDirectory, entry!) });
    expect(events[2]).toMatchObject({ stage: 'ready', fromCache: true });

    // An in-memory U-Net is hashed for its key instead of read.
    events.length = 0;
    const fromMemory = await createFeatureExtractor({
      unet,
      blocks: [4],
      timesteps: [50],
      runner: cpu,
      cacheDirectory,
      onSetup: (event) => events.push(event),
    });
    await fromMemory.release();
    expect(events.map((event) => event.stage)).toEqual(['hash', 'build', 'save', 'session', 'ready']);
  });

  it('lets two builds of the same entry in one process both succeed, and replaces a broken entry', async () => {
    const cacheDirectory = mkdtempSync(join(tmpdir(), 'diffssl-cache-'));
    const options = { checkpoint: EMBEDDED_MODEL.checkpoint, config: flags, blocks: [4], timesteps: [50], runner: cpu, cacheDirectory };
    const [first, second] = await Promise.all([createFeatureExtractor(options), createFeatureExtractor(options)]);
    expect([first.fromCache, second.fromCache]).toEqual([false, false]); // both missed the cache and built it
    const a = (await first.extract(images, { ids: [3, 4] })).get(featureKey(50, 4))!;
    expect((await second.extract(images, { ids: [3, 4] })).get(featureKey(50, 4))!.toArray()).toEqual(a.toArray());
    await Promise.all([first.release(), second.release()]);
    const entries = readdirSync(cacheDirectory);
    expect(entries).toHaveLength(1);
    // Break the entry: the next start rebuilds it and replaces it.
    rmSync(join(cacheDirectory, entries[0]!, 'info.json'));
    const rebuilt = await createFeatureExtractor(options);
    expect(rebuilt.fromCache).toBe(false);
    expect((await rebuilt.extract(images, { ids: [3, 4] })).get(featureKey(50, 4))!.toArray()).toEqual(a.toArray());
    await rebuilt.release();
    expect(readdirSync(cacheDirectory)).toEqual(entries);
    const cached = await createFeatureExtractor(options);
    expect(cached.fromCache).toBe(true);
    await cached.release();
  });

  it('lets two processes build the same entry at once: both succeed and one valid entry remains', async () => {
    const cacheDirectory = mkdtempSync(join(tmpdir(), 'diffssl-cache-'));
    const go = join(cacheDirectory, '..', `go-${process.pid}-${Date.now()}`);
    const start = () => {
      const process_ = spawn(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', fixture('build-cache-entry.ts'), cacheDirectory, go], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      const ready = new Promise<void>((resolve) =>
        process_.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('ready\n')) resolve();
        }),
      );
      process_.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        process_.on('close', (code) => resolve({ code, stdout, stderr })),
      );
      return { ready, done };
    };
    const children = [start(), start()];
    await Promise.all(children.map((c) => c.ready));
    writeFileSync(go, '');
    const results = await Promise.all(children.map((c) => c.done));
    rmSync(go, { force: true });
    const reports = results.map((result) => {
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout.split('\n').filter(Boolean).pop()!) as { fromCache: boolean; values: number[] };
    });
    expect(reports[1]!.values).toEqual(reports[0]!.values);
    const entries = readdirSync(cacheDirectory);
    expect(entries, 'no temporary or stale folders left').toHaveLength(1);
    expect(entries[0]).toMatch(/^unet-[0-9a-f]{24}$/);
    expect(existsSync(join(cacheDirectory, entries[0]!, 'info.json'))).toBe(true);
    // The entry is valid: a third start uses it and extracts what an uncached extractor extracts.
    const cached = await createFeatureExtractor({
      checkpoint: EMBEDDED_MODEL.checkpoint,
      config: flags,
      blocks: [7],
      timesteps: [150],
      cacheDirectory,
      runner: cpu,
    });
    const fresh = await createFeatureExtractor({ unet, blocks: [7], timesteps: [150], runner: cpu });
    expect(cached.fromCache).toBe(true);
    const fromCache = (await cached.extract(images, { ids: [1, 2] })).get(featureKey(150, 7))!;
    const direct = (await fresh.extract(images, { ids: [1, 2] })).get(featureKey(150, 7))!;
    expect(fromCache.toArray()).toEqual(direct.toArray());
    expect(Array.from(fromCache.data.subarray(0, 64))).toEqual(reports[0]!.values);
    await cached.release();
    await fresh.release();
  }, 120_000);
});
