/**
 * The `diffssl` command line end to end on the embedded model and data (small subsets):
 * every protocol trains and evaluates, a killed run resumes to bit-identical weights, the
 * feature cache changes nothing but speed, sharded extraction equals a single process, and
 * bad input gets one clear line.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readSafetensors } from '@diffssl/core';
import { EMBEDDED_DATA } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { readTrainingState } from '@diffssl/core';
import { diffssl, EMBEDDED, startDiffssl } from './cli-helpers.js';

const temporary = () => mkdtempSync(join(tmpdir(), 'diffssl-cli-'));
const report = (directory: string) => JSON.parse(readFileSync(join(directory, 'report.json'), 'utf8')) as { top1: number; test_images: number; epochs: { loss: number }[]; notes?: string[] };
const weights = (directory: string) => readSafetensors(readFileSync(join(directory, 'model.safetensors'))).tensors;

describe('diffssl train', () => {
  const cache = temporary();
  const small = [...EMBEDDED, '--train-limit', '96', '--test-limit', '37', '--epochs', '2', '--batch-size', '16', '--cache', cache, '--provider', 'cpu', '--quiet'];
  const protocols: [string, string[]][] = [
    ['pixels', []],
    ['random', ['--blocks', '5', '--timesteps', '50']],
    ['linear', ['--blocks', '10', '--timesteps', '50']],
    ['attention', ['--blocks', '10', '--timesteps', '50']],
    ['difformer', ['--blocks', '9,10', '--timesteps', '50,150']],
    ['diffeed', ['--blocks', '10', '--timesteps', '50', '--feedback-from', '14,17']],
  ];
  it.each(protocols)('trains and evaluates %s end to end, scoring every test image', async (protocol, extra) => {
    const out = temporary();
    const result = await diffssl(['train', '--protocol', protocol, ...small, ...extra, '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    const written = report(out);
    expect(written.test_images).toBe(37);
    expect(written.epochs).toHaveLength(2);
    // top-1 is a percentage of all 37 images: a whole number of correct answers.
    const correct = (written.top1 * 37) / 100;
    expect(Math.abs(correct - Math.round(correct))).toBeLessThan(1e-9);
    expect(written.epochs.every((epoch) => Number.isFinite(epoch.loss))).toBe(true);
    // It learned: the mean training loss fell from the first epoch to the second.
    expect(written.epochs[1]!.loss).toBeLessThan(written.epochs[0]!.loss);
    expect(result.stdout).toMatch(new RegExp(`${protocol}: top-1 [\\d.]+% of 37 test images`));
    for (const file of ['report.md', 'loss.svg', 'confusion.svg', 'model.safetensors', 'checkpoint.safetensors']) expect(existsSync(join(out, file)), file).toBe(true);
    if (protocol === 'diffeed') expect(written.notes?.join(' ')).toMatch(/DifFeed cannot use the feature cache/);
    // The saved model evaluates to the same accuracy on every test image.
    const evaluated = await diffssl(['eval', '--model', out, '--cache', cache, '--provider', 'cpu', '--quiet']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(report(join(out, 'eval')).top1).toBe(written.top1);
  });

  it('resumes a run killed mid-epoch to bit-identical final weights', async () => {
    const args = ['train', '--protocol', 'attention', ...EMBEDDED, '--train-limit', '480', '--test-limit', '20', '--epochs', '4', '--batch-size', '16', '--momentum', '0.9', '--blocks', '10', '--timesteps', '50', '--cache', cache, '--provider', 'cpu', '--quiet'];
    const straight = temporary();
    expect((await diffssl([...args, '--out', straight])).code).toBe(0);
    const killed = temporary();
    const child = startDiffssl([...args, '--out', killed]);
    const checkpoint = join(killed, 'checkpoint.safetensors');
    // Wait for the checkpoint after epoch 2, then kill the process during epoch 3.
    for (let i = 0; i < 6000; i++) {
      if (existsSync(checkpoint) && readTrainingState(readFileSync(checkpoint)).metadata.epochs_done === '2') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
    const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.kill('SIGKILL');
    expect((await exit).signal).toBe('SIGKILL');
    expect(readTrainingState(readFileSync(checkpoint)).metadata.epochs_done).toBe('2');
    expect(existsSync(join(killed, 'model.safetensors'))).toBe(false);
    const resumed = await diffssl([...args, '--out', killed, '--resume'].filter((a) => a !== '--quiet'));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed from the checkpoint after epoch 2/);
    const [a, b] = [weights(straight), weights(killed)];
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [name, tensor] of a) expect(Array.from(b.get(name)!.toArray()), name).toEqual(Array.from(tensor.toArray()));
    expect(report(killed).epochs.map((e) => e.loss)).toEqual(report(straight).epochs.map((e) => e.loss));
  });

  it('gives the same accuracy with the feature cache as recomputing the features every epoch (same seeds)', async () => {
    const args = ['train', '--protocol', 'linear', ...EMBEDDED, '--train-limit', '128', '--test-limit', '64', '--epochs', '3', '--blocks', '10', '--timesteps', '50', '--provider', 'cpu', '--quiet'];
    const [cached, recomputed, ownCache] = [temporary(), temporary(), temporary()];
    expect((await diffssl([...args, '--cache', ownCache, '--out', cached])).code).toBe(0);
    // The cached run wrote its features into the cache folder (train and test entries).
    const entries = () => readdirSync(ownCache).filter((name) => /^features-[0-9a-f]+$/.test(name)).sort();
    const written = entries();
    expect(written).toHaveLength(2);
    const stamps = () => written.flatMap((entry) => readdirSync(join(ownCache, entry, 'data'), { recursive: true }).map(String).filter((name) => name.endsWith('.f32')).map((name) => `${name}@${statSync(join(ownCache, entry, 'data', name)).mtimeMs}`));
    const before = stamps();
    expect(before.length).toBeGreaterThan(0);
    // A second run reads those entries: same accuracy, no new entry, no file rewritten.
    const again = temporary();
    expect((await diffssl([...args, '--cache', ownCache, '--out', again])).code).toBe(0);
    expect(entries()).toEqual(written);
    expect(stamps()).toEqual(before);
    expect(report(again).top1).toBe(report(cached).top1);
    const uncached = await diffssl([...args, '--no-cache', '--out', recomputed]);
    expect(uncached.code, uncached.stderr).toBe(0);
    expect(report(recomputed).notes?.join(' ')).toMatch(/no feature cache/);
    expect(report(recomputed).top1).toBe(report(cached).top1);
    const [a, b] = [weights(cached), weights(recomputed)];
    for (const [name, tensor] of a) {
      const other = b.get(name)!.toArray();
      expect(Math.max(...tensor.toArray().map((v, i) => Math.abs(v - other[i]!))), name).toBeLessThan(1e-5);
    }
  });
});

describe('diffssl extract', () => {
  it('writes 4 shards in 4 processes whose merge is byte-identical to a single-process extraction', async () => {
    const [single, sharded] = [temporary(), temporary()];
    const args = ['extract', ...EMBEDDED, '--train-limit', '42', '--test-limit', '10', '--blocks', '5,10', '--timesteps', '50', '--pre-pool-size', '4', '--split', 'train', '--provider', 'cpu', '--quiet'];
    expect((await diffssl([...args, '--cache', single])).code).toBe(0);
    const shards = await Promise.all([0, 1, 2, 3].map((k) => diffssl([...args, '--cache', sharded, '--shard', `${k}/4`])));
    shards.forEach((shard) => expect(shard.code, shard.stderr).toBe(0));
    const merged = await diffssl([...args, '--cache', sharded, '--merge']);
    expect(merged.code, merged.stderr).toBe(0);
    const entry = (root: string) => join(root, readdirSync(root).find((name) => /^features-[0-9a-f]+$/.test(name))!);
    const files = (root: string) => readdirSync(join(entry(root), 'data'), { recursive: true }).map(String).filter((name) => name.endsWith('.f32')).sort();
    expect(files(sharded)).toEqual(files(single));
    expect(files(single).length).toBe(2);
    for (const name of files(single)) expect(Buffer.compare(readFileSync(join(entry(single), 'data', name)), readFileSync(join(entry(sharded), 'data', name))), name).toBe(0);
    const missing = await diffssl([...args, '--cache', temporary(), '--merge']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no shards of this extraction/);
  });
});

describe('one clear line for bad input', () => {
  const broken = temporary();
  const idx = readFileSync(join(EMBEDDED_DATA, 't10k-labels-idx1-ubyte.gz'));
  const truncated = join(broken, 'truncated');
  mkdirSync(truncated);
  writeFileSync(join(truncated, 'train-images-idx3-ubyte.gz'), gzipSync(Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]), Buffer.alloc(500)])));
  writeFileSync(join(truncated, 'train-labels-idx1-ubyte.gz'), idx);
  const badLabels = join(broken, 'labels');
  mkdirSync(badLabels);
  const labelBytes = Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, 2]), Buffer.from([3, 12])]);
  const imageBytes = Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]), Buffer.alloc(2 * 784)]);
  for (const split of ['train', 't10k']) {
    writeFileSync(join(badLabels, `${split}-images-idx3-ubyte`), imageBytes);
    writeFileSync(join(badLabels, `${split}-labels-idx1-ubyte`), labelBytes);
  }
  const folders = join(broken, 'folders');
  for (const split of ['train', 'val']) {
    mkdirSync(join(folders, split, 'cat'), { recursive: true });
    writeFileSync(join(folders, split, 'cat', 'broken.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
  }
  const sizes = join(broken, 'sizes');
  const smallImages = Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 20, 0, 0, 0, 20]), Buffer.alloc(2 * 400)]);
  mkdirSync(sizes);
  for (const split of ['train', 't10k']) {
    writeFileSync(join(sizes, `${split}-images-idx3-ubyte`), smallImages);
    writeFileSync(join(sizes, `${split}-labels-idx1-ubyte`), Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, 2]), Buffer.from([1, 2])]));
  }
  // A file where a folder should be: unwritable even for root (permissions are not).
  const notAFolder = join(broken, 'not-a-folder');
  writeFileSync(notAFolder, 'x');
  const train = (data: string, extra: string[] = []) => ['train', '--protocol', 'linear', ...EMBEDDED.map((a) => (a === EMBEDDED_DATA ? data : a)), '--blocks', '10', '--timesteps', '50', '--epochs', '1', '--provider', 'cpu', '--quiet', '--out', join(broken, 'out'), ...extra];
  const cases: [string, string[], RegExp][] = [
    ['a missing data folder', train(join(broken, 'nope')), /is not a directory/],
    ['a truncated IDX file', train(truncated), /train-images-idx3-ubyte\.gz.*(truncated|expected|found)/],
    ['a broken PNG', [...train(folders).filter((a) => a !== 'fashion-mnist' && a !== '--class-names')], /broken\.png/],
    ['a label outside the classes', train(badLabels), /label 12.*outside|outside.*12/],
    ['an image of the wrong size with no resize', train(sizes), /the images are 20x20 and the U-Net takes 28x28; IDX and array data are used as they are unless you resize them/],
    ['an unknown protocol', ['train', '--protocol', 'lineal', ...EMBEDDED, '--out', join(broken, 'out')], /--protocol: expected one of pixels, random, linear, attention, difformer, diffeed; found 'lineal'/],
    ['an unknown option', ['train', '--protocol', 'linear', '--epoch', '3', ...EMBEDDED, '--out', join(broken, 'out')], /unknown option '--epoch' \(Did you mean --epochs\?\)/],
    ['an unwritable output folder', train(EMBEDDED_DATA, ['--out', join(notAFolder, 'run')]), /--out: cannot write to .*not-a-folder\/run/],
    ['a missing checkpoint', ['train', '--protocol', 'linear', ...EMBEDDED.map((a) => (a.endsWith('.pt') ? join(broken, 'missing.pt') : a)), '--blocks', '10', '--timesteps', '50', '--out', join(broken, 'out'), '--quiet'], /missing\.pt/],
    ['a corrupt checkpoint', ['train', '--protocol', 'linear', ...EMBEDDED.map((a) => (a.endsWith('.pt') ? join(truncated, 'train-labels-idx1-ubyte.gz') : a)), '--blocks', '10', '--timesteps', '50', '--out', join(broken, 'out'), '--quiet'], /checkpoint|\.pt|safetensors/],
  ];
  it.each(cases)('%s', async (_label, args, pattern) => {
    const result = await diffssl(args);
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split('\n').filter((line) => line.trim() !== '');
    expect(lines.length, result.stderr).toBe(1);
    expect(lines[0]).toMatch(pattern);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
