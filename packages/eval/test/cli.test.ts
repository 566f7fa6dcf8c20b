/**
 * The `diffssl` command line end to end on the embedded model and data (small subsets):
 * every protocol trains and evaluates well above chance (checked against labels and predictions
 * recomputed here), a run killed mid-epoch resumes to bit-identical weights, the
 * feature cache changes nothing but speed, sharded extraction equals a single process, and
 * bad input gets one clear line.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readSafetensors, type HostTensor } from '@diffssl/core';
import { difFormer64, EMBEDDED_DATA, linear64, relativeError, toTensor64 } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { readTrainingState } from '@diffssl/core';
import { openFeatureCache } from '../src/cache/index.js';
import { diffssl, EMBEDDED, startDiffssl } from './cli-helpers.js';

const temporary = () => mkdtempSync(join(tmpdir(), 'diffssl-cli-'));
const report = (directory: string) =>
  JSON.parse(readFileSync(join(directory, 'report.json'), 'utf8')) as {
    top1: number;
    test_images: number;
    epochs: { loss: number }[];
    notes?: string[];
    confusion_matrix: number[][];
    settings?: { microBatch?: number };
  };
const weights = (directory: string) => readSafetensors(readFileSync(join(directory, 'model.safetensors'))).tensors;

/** The first `count` test labels and images (uint8, 784 each), read here from the gzipped IDX files (8- and 16-byte headers). */
function testSplit(count: number): { labels: number[]; pixels: Uint8Array } {
  const labels = gunzipSync(readFileSync(join(EMBEDDED_DATA, 't10k-labels-idx1-ubyte.gz')));
  const images = gunzipSync(readFileSync(join(EMBEDDED_DATA, 't10k-images-idx3-ubyte.gz')));
  return { labels: Array.from(labels.subarray(8, 8 + count)), pixels: images.subarray(16, 16 + count * 784) };
}

/** counts[true][predicted] of predictions. */
function confusion(labels: readonly number[], predictions: readonly number[]): number[][] {
  const counts = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  labels.forEach((label, i) => counts[label]![predictions[i]!]!++);
  return counts;
}

const argmax = (row: ArrayLike<number>) => Array.from(row).reduce((best, v, i, all) => (v > all[best]! ? i : best), 0);

/** The test features a run cached: the cache entry of `count` images holding `name` at `side` x `side`. */
async function cachedTestFeatures(cache: string, count: number, names: string[], side: number): Promise<Map<string, HostTensor>> {
  for (const entry of readdirSync(cache).filter((name) => /^features-[0-9a-f]+$/.test(name))) {
    const opened = await openFeatureCache(join(cache, entry));
    try {
      if (opened.imageCount !== count || !names.every((name) => opened.tensorNames.includes(name))) continue;
      const batch = await opened.readBatch(
        Array.from({ length: count }, (_, i) => i),
        0,
        names,
      );
      if (batch.get(names[0]!)!.shape[2] === side) return batch;
    } finally {
      await opened.close();
    }
  }
  throw new Error(`no cached test features ${names.join(', ')} at ${side}x${side} in ${cache}`);
}

/**
 * Predictions recomputed here from the saved weights, in float64: the raw-pixel Linear on x / 127.5 - 1,
 * GD(L)'s Linear on the cached (already pooled) test features, AttentionFusion on them for the attention
 * heads. DifFeed's two passes are not recomputed (its report is checked against the labels only).
 */
async function recomputedPredictions(protocol: string, out: string, cache: string, count: number): Promise<number[] | undefined> {
  const saved = weights(out);
  const linearHead = (inputs: Float64Array, width: number) => {
    const logits = linear64({ shape: [count, width], data: inputs }, saved.get('fcs.0.weight')!.toArray(), saved.get('fcs.0.bias')!.toArray(), 10);
    return Array.from({ length: count }, (_, i) => argmax(logits.data.subarray(i * 10, (i + 1) * 10)));
  };
  if (protocol === 'pixels')
    return linearHead(
      Float64Array.from(testSplit(count).pixels, (p) => p / 127.5 - 1),
      784,
    );
  if (protocol === 'linear' || protocol === 'random') {
    const name = protocol === 'linear' ? 't50/block10' : 't50/block05';
    const side = protocol === 'linear' ? 2 : 4;
    const features = (await cachedTestFeatures(cache, count, [name], side)).get(name)!;
    return linearHead(Float64Array.from(features.toArray()), features.size / count);
  }
  if (protocol === 'attention' || protocol === 'difformer') {
    const [blocks, timesteps] =
      protocol === 'attention'
        ? [[10], [50]]
        : [
            [9, 10],
            [50, 150],
          ];
    const keys = (t: number) => blocks.map((block) => `t${t}/block${String(block).padStart(2, '0')}`);
    const features = await cachedTestFeatures(cache, count, timesteps.flatMap(keys), 7);
    const { logits } = difFormer64(new Map([...features].map(([key, tensor]) => [key, toTensor64(tensor)])), saved, {
      timesteps,
      keys,
      blockOf: (key) => Number(/block(\d+)$/.exec(key)![1]),
      prePoolSize: 7,
      normType: 'layer',
      heads: 4,
    });
    return Array.from({ length: count }, (_, i) => argmax(logits.data.subarray(i * 10, (i + 1) * 10)));
  }
  return undefined;
}

describe('diffssl train', () => {
  const cache = temporary();
  const TEST_IMAGES = 100;
  const small = [
    ...EMBEDDED,
    '--train-limit',
    '192',
    '--test-limit',
    String(TEST_IMAGES),
    '--epochs',
    '2',
    '--batch-size',
    '16',
    '--cache',
    cache,
    '--provider',
    'cpu',
    '--quiet',
  ];
  // Learning rates and momentum that learn something in 24 steps (attention and DifFormer at their default lr 5e-2).
  const protocols: [string, string[]][] = [
    ['pixels', ['--lr', '0.05', '--momentum', '0.9']],
    ['random', ['--blocks', '5', '--timesteps', '50', '--pre-pool-size', '4', '--lr', '0.05', '--momentum', '0.9']],
    ['linear', ['--blocks', '10', '--timesteps', '50', '--lr', '0.05', '--momentum', '0.9']],
    ['attention', ['--blocks', '10', '--timesteps', '50', '--momentum', '0.9']],
    ['difformer', ['--blocks', '9,10', '--timesteps', '50,150']],
    ['diffeed', ['--blocks', '10', '--timesteps', '50', '--feedback-from', '14,17', '--momentum', '0.9']],
  ];
  /** The options that apply to a protocol: no checkpoint for pixels and the random U-Net, no flags for pixels, no feature cache for pixels and DifFeed. */
  const applicable = (protocol: string, args: string[]) => {
    const dropped = new Set([
      ...(protocol === 'pixels' || protocol === 'random' ? ['--checkpoint'] : []),
      ...(protocol === 'pixels' ? ['--config'] : []),
      ...(protocol === 'diffeed' || protocol === 'pixels' ? ['--cache'] : []),
    ]);
    return args.filter((arg, i) => !dropped.has(arg) && !dropped.has(args[i - 1]!));
  };
  it.each(protocols)(
    'trains and evaluates %s end to end, scoring every test image well above chance',
    async (protocol, extra) => {
      const out = temporary();
      const result = await diffssl(['train', '--protocol', protocol, ...applicable(protocol, small), ...extra, '--out', out]);
      expect(result.code, result.stderr).toBe(0);
      const written = report(out);
      expect(written.test_images).toBe(TEST_IMAGES);
      expect(written.epochs).toHaveLength(2);
      expect(written.epochs.every((epoch) => Number.isFinite(epoch.loss))).toBe(true);
      // It learned: the mean training loss fell from the first epoch to the second.
      expect(written.epochs[1]!.loss).toBeLessThan(written.epochs[0]!.loss);
      // The confusion matrix's rows are the true classes of the first 100 test images, read here from the IDX file;
      // top-1 is its diagonal over all of them.
      const { labels } = testSplit(TEST_IMAGES);
      const perClass = Array.from({ length: 10 }, (_, c) => labels.filter((label) => label === c).length);
      expect(written.confusion_matrix.map((row) => row.reduce((a, b) => a + b, 0))).toEqual(perClass);
      const correct = written.confusion_matrix.reduce((sum, row, c) => sum + row[c]!, 0);
      expect(written.top1).toBeCloseTo((100 * correct) / TEST_IMAGES, 9);
      // Well above chance: 10 classes give 10 % (P(at least 25 of 100 right by guessing) < 1e-4), and always
      // answering the commonest class gives max(perClass) %.
      expect(written.top1).toBeGreaterThanOrEqual(25);
      expect(correct).toBeGreaterThanOrEqual(Math.max(...perClass) + 10);
      // The predictions recomputed here from the saved weights give the same confusion matrix.
      const predictions = await recomputedPredictions(protocol, out, cache, TEST_IMAGES);
      if (protocol !== 'diffeed') expect(confusion(labels, predictions!)).toEqual(written.confusion_matrix);
      expect(result.stdout).toMatch(new RegExp(`${protocol}: top-1 [\\d.]+% of ${TEST_IMAGES} test images`));
      for (const file of ['report.md', 'loss.svg', 'confusion.svg', 'model.safetensors', 'checkpoint.safetensors'])
        expect(existsSync(join(out, file)), file).toBe(true);
      if (protocol === 'diffeed') expect(written.notes?.join(' ')).toMatch(/DifFeed cannot use the feature cache/i);
      // The saved model evaluates to the same accuracy on every test image.
      const evaluated = await diffssl(['eval', '--model', out, '--cache', cache, '--provider', 'cpu', '--quiet']);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      expect(report(join(out, 'eval')).top1).toBe(written.top1);
      expect(report(join(out, 'eval')).confusion_matrix).toEqual(written.confusion_matrix);
    },
    300_000,
  );

  /** A quiet CPU attention-head train run (block 10 at t=50, batch 16, momentum 0.9) on the first `trainImages` images. */
  const attentionTrainArgs = (trainImages: number, epochs: number) => [
    'train',
    '--protocol',
    'attention',
    ...EMBEDDED,
    '--train-limit',
    String(trainImages),
    '--test-limit',
    '20',
    '--epochs',
    String(epochs),
    '--batch-size',
    '16',
    '--momentum',
    '0.9',
    '--blocks',
    '10',
    '--timesteps',
    '50',
    '--cache',
    cache,
    '--provider',
    'cpu',
    '--quiet',
  ];

  it('resumes a run killed mid-epoch to bit-identical final weights', async () => {
    const args = attentionTrainArgs(480, 4);
    const straight = temporary();
    expect((await diffssl([...args, '--out', straight])).code).toBe(0);
    const killed = temporary();
    // The internal hook kills the process (SIGKILL, as a crash) right after step 5 of the 30 of epoch 3:
    // the checkpoint after epoch 2 is on disk and epoch 3 is a sixth done.
    const child = startDiffssl([...args, '--out', killed], { DIFFSSL_INTERNAL_CRASH_AFTER_STEP: '3:5' });
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    expect(exit.signal).toBe('SIGKILL');
    const checkpoint = join(killed, 'checkpoint.safetensors');
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

  it("--micro-batch: the whole batch's weights (no BatchNorm), and a run killed mid-epoch resumes bit-identically", async () => {
    const args = attentionTrainArgs(96, 3);
    const whole = temporary();
    expect((await diffssl([...args, '--out', whole])).code).toBe(0);
    // 16 = 5 + 5 + 5 + 1 per step, 6 steps per epoch.
    const micro = [...args, '--micro-batch', '5'];
    const straight = temporary();
    expect((await diffssl([...micro, '--out', straight])).code).toBe(0);
    expect(report(straight).settings?.microBatch).toBe(5);
    const [a, w] = [weights(straight), weights(whole)];
    for (const [name, tensor] of w) expect(relativeError(a.get(name)!, tensor, 0), name).toBeLessThan(1e-5);
    const killed = temporary();
    const child = startDiffssl([...micro, '--out', killed], { DIFFSSL_INTERNAL_CRASH_AFTER_STEP: '2:3' });
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    expect(exit.signal).toBe('SIGKILL');
    expect(readTrainingState(readFileSync(join(killed, 'checkpoint.safetensors'))).metadata.epochs_done).toBe('1');
    const resumed = await diffssl([...micro, '--out', killed, '--resume'].filter((arg) => arg !== '--quiet'));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed from the checkpoint after epoch 1/);
    const b = weights(killed);
    for (const [name, tensor] of a) expect(Array.from(b.get(name)!.toArray()), name).toEqual(Array.from(tensor.toArray()));
    expect(report(killed).epochs.map((e) => e.loss)).toEqual(report(straight).epochs.map((e) => e.loss));
  }, 300_000);

  it('gives the same accuracy with the feature cache as recomputing the features every epoch (same seeds)', async () => {
    const args = [
      'train',
      '--protocol',
      'linear',
      ...EMBEDDED,
      '--train-limit',
      '128',
      '--test-limit',
      '64',
      '--epochs',
      '3',
      '--blocks',
      '10',
      '--timesteps',
      '50',
      '--provider',
      'cpu',
      '--quiet',
    ];
    const [cached, recomputed, ownCache] = [temporary(), temporary(), temporary()];
    expect((await diffssl([...args, '--cache', ownCache, '--out', cached])).code).toBe(0);
    // The cached run wrote its features into the cache folder (train and test entries).
    const entries = () =>
      readdirSync(ownCache)
        .filter((name) => /^features-[0-9a-f]+$/.test(name))
        .sort();
    const written = entries();
    expect(written).toHaveLength(2);
    const stamps = () =>
      written.flatMap((entry) =>
        readdirSync(join(ownCache, entry, 'data'), { recursive: true })
          .map(String)
          .filter((name) => name.endsWith('.f32'))
          .map((name) => `${name}@${statSync(join(ownCache, entry, 'data', name)).mtimeMs}`),
      );
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
    const args = [
      'extract',
      ...EMBEDDED,
      '--train-limit',
      '42',
      '--test-limit',
      '10',
      '--blocks',
      '5,10',
      '--timesteps',
      '50',
      '--pre-pool-size',
      '4',
      '--split',
      'train',
      '--provider',
      'cpu',
      '--quiet',
    ];
    expect((await diffssl([...args, '--cache', single])).code).toBe(0);
    const shards = await Promise.all([0, 1, 2, 3].map((k) => diffssl([...args, '--cache', sharded, '--shard', `${k}/4`])));
    shards.forEach((shard) => expect(shard.code, shard.stderr).toBe(0));
    const merged = await diffssl([...args, '--cache', sharded, '--merge']);
    expect(merged.code, merged.stderr).toBe(0);
    const entry = (root: string) => join(root, readdirSync(root).find((name) => /^features-[0-9a-f]+$/.test(name))!);
    const files = (root: string) =>
      readdirSync(join(entry(root), 'data'), { recursive: true })
        .map(String)
        .filter((name) => name.endsWith('.f32'))
        .sort();
    expect(files(sharded)).toEqual(files(single));
    expect(files(single).length).toBe(2);
    for (const name of files(single))
      expect(Buffer.compare(readFileSync(join(entry(single), 'data', name)), readFileSync(join(entry(sharded), 'data', name))), name).toBe(0);
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
  writeFileSync(
    join(truncated, 'train-images-idx3-ubyte.gz'),
    gzipSync(Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]), Buffer.alloc(500)])),
  );
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
  const train = (data: string, extra: string[] = []) => [
    'train',
    '--protocol',
    'linear',
    ...EMBEDDED.map((a) => (a === EMBEDDED_DATA ? data : a)),
    '--blocks',
    '10',
    '--timesteps',
    '50',
    '--epochs',
    '1',
    '--provider',
    'cpu',
    '--quiet',
    '--out',
    join(broken, 'out'),
    ...extra,
  ];
  const cases: [string, string[], RegExp][] = [
    ['a missing data folder', train(join(broken, 'nope')), /is not a directory/],
    ['a truncated IDX file', train(truncated), /train-images-idx3-ubyte\.gz.*(truncated|expected|found)/],
    ['a broken PNG', [...train(folders).filter((a) => a !== 'fashion-mnist' && a !== '--class-names')], /broken\.png/],
    ['a label outside the classes', train(badLabels), /label 12.*outside|outside.*12/],
    [
      'an image of the wrong size with no resize',
      train(sizes),
      /the images are 20x20 and the U-Net takes 28x28; IDX and array data are used as they are unless you resize them/,
    ],
    [
      'an unknown protocol',
      ['train', '--protocol', 'lineal', ...EMBEDDED, '--out', join(broken, 'out')],
      /--protocol: expected one of pixels, random, linear, attention, difformer, diffeed; found 'lineal'/,
    ],
    [
      'an unknown option',
      ['train', '--protocol', 'linear', '--epoch', '3', ...EMBEDDED, '--out', join(broken, 'out')],
      /unknown option '--epoch' \(Did you mean --epochs\?\)/,
    ],
    [
      'a micro-batch that is not a positive integer',
      ['train', '--protocol', 'linear', '--micro-batch', '2.5', ...EMBEDDED, '--out', join(broken, 'out')],
      /--micro-batch: expected a positive integer; found '2\.5'/,
    ],
    ['an unwritable output folder', train(EMBEDDED_DATA, ['--out', join(notAFolder, 'run')]), /--out: cannot write to .*not-a-folder\/run/],
    [
      'a missing checkpoint',
      [
        'train',
        '--protocol',
        'linear',
        ...EMBEDDED.map((a) => (a.endsWith('.pt') ? join(broken, 'missing.pt') : a)),
        '--blocks',
        '10',
        '--timesteps',
        '50',
        '--out',
        join(broken, 'out'),
        '--quiet',
      ],
      /missing\.pt/,
    ],
    [
      'a corrupt checkpoint',
      [
        'train',
        '--protocol',
        'linear',
        ...EMBEDDED.map((a) => (a.endsWith('.pt') ? join(truncated, 'train-labels-idx1-ubyte.gz') : a)),
        '--blocks',
        '10',
        '--timesteps',
        '50',
        '--out',
        join(broken, 'out'),
        '--quiet',
      ],
      /checkpoint|\.pt|safetensors/,
    ],
  ];
  it.each(cases)('%s', async (_label, args, pattern) => {
    const result = await diffssl(args);
    expect(result.code).not.toBe(0);
    const lines = result.stderr
      .trim()
      .split('\n')
      .filter((line) => line.trim() !== '');
    expect(lines.length, result.stderr).toBe(1);
    expect(lines[0]).toMatch(pattern);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
