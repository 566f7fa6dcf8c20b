/**
 * `diffssl train --finetune` end to end on the embedded model and data (a
 * few steps): the U-Net's weights change only on the path to the block read,
 * the loss falls, no feature cache is written, `unet.safetensors` and
 * `unet.pt` hold the same fine-tuned weights and serve `--checkpoint`, the
 * saved model evaluates to the same accuracy, and a run killed after an
 * epoch resumes to bit-identical weights.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  broadcastTo,
  BuildContext,
  createRunner,
  Graph,
  readSafetensors,
  readTrainingState,
  reshape,
  type HostTensor,
  type SymbolicTensor,
} from '@diffssl/core';
import { EMBEDDED_MODEL, embeddedFlags, randomTensor, relativeError, runOnnx } from '@diffssl/testing';
import { AdmUNet, loadCheckpoint, type GuidedDiffusionFlags } from '@diffssl/unet';
import { classifierFeeds, type ExportedClassifierInfo } from '../src/export/classifier-inputs.js';
import { createProtocolModel, type ProtocolModel } from '../src/protocols/protocol.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { diffssl, EMBEDDED, startDiffssl } from './cli-helpers.js';

const temporary = () => mkdtempSync(join(tmpdir(), 'diffssl-finetune-'));
const report = (directory: string) =>
  JSON.parse(readFileSync(join(directory, 'report.json'), 'utf8')) as { top1: number; epochs: { loss: number; learning_rate: number }[]; notes?: string[] };
const bytes = (tensor: HostTensor) => {
  const values = Float32Array.from(tensor.toArray() as ArrayLike<number>);
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
};
/** Bit-identical float32 values. */
const same = (a: HostTensor, b: HostTensor) => a.shape.join() === b.shape.join() && bytes(a).equals(bytes(b));

/** A model's logits from the exported classifier's inputs (`images`, `noise` [B, T, C, H, W], `timesteps` [T]), built as the export does. */
function classifierGraphOutput(model: ProtocolModel): SymbolicTensor {
  const graph = new Graph();
  const context = new BuildContext(graph, model.modules(), { mode: 'eval' });
  const images = graph.input('images', 'float32', [3, 3, 28, 28]);
  const noise = graph.input('noise', 'float32', [3, 1, 3, 28, 28]);
  const timesteps = graph.input('timesteps', 'int64', [1]);
  const [t] = model.timesteps;
  return model.forwardImages(context, {
    images,
    noise: new Map([[t!, reshape(noise, [3, 3, 28, 28])]]),
    timesteps: new Map([[t!, broadcastTo(timesteps, [3])]]),
  });
}

describe('diffssl train --finetune', () => {
  const cache = temporary();
  const args = [
    'train',
    '--protocol',
    'linear',
    '--finetune',
    ...EMBEDDED,
    '--train-limit',
    '64',
    '--test-limit',
    '20',
    '--epochs',
    '3',
    '--batch-size',
    '16',
    '--blocks',
    '6',
    '--timesteps',
    '50',
    '--provider',
    'cpu',
    '--quiet',
  ];
  // The default cache root of these runs: fine-tuning must leave it empty.
  const env = { DIFFSSL_CACHE: cache };
  const out = temporary();
  let original: Map<string, HostTensor>;
  beforeAll(async () => {
    original = await loadCheckpoint(EMBEDDED_MODEL.checkpoint);
    const result = await diffssl([...args, '--out', out], env);
    expect(result.code, result.stderr).toBe(0);
  }, 600_000);

  it('trains the U-Net on the path to block 6 only, at lr 1e-3, without the feature cache, and the loss falls', async () => {
    const written = report(out);
    expect(written.epochs.map((epoch) => epoch.learning_rate)).toEqual([1e-3, 1e-3, 1e-3]);
    expect(written.epochs[2]!.loss).toBeLessThan(written.epochs[0]!.loss);
    expect(written.notes?.join(' ')).toMatch(/fine-tuning: the U-Net trains with the head/);
    expect(readdirSync(cache)).toEqual([]);
    const tuned = (await loadCheckpoint(join(out, 'unet.safetensors')))!;
    expect([...tuned.keys()]).toEqual([...original.keys()]);
    // Block 6 is input_blocks.5: time_embed and input_blocks.0-5 train; later blocks and out.* are frozen.
    const trained = (name: string) => /^(time_embed\.|input_blocks\.[0-5]\.)/.test(name);
    const changed = [...original.keys()].filter((name) => !same(tuned.get(name)!, original.get(name)!));
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.filter((name) => !trained(name))).toEqual([]);
    // Every trained convolution weight moved (biases cancelled by a scale-shift GroupNorm may not).
    expect(
      [...original.keys()].filter((name) => trained(name) && /(in_layers\.2|out_layers\.3|input_blocks\.0\.0)\.weight$/.test(name) && !changed.includes(name)),
    ).toEqual([]);
    // model.safetensors holds the head alone.
    expect([...readSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors.keys()].sort()).toEqual(['fcs.0.bias', 'fcs.0.weight']);
  });

  it('writes unet.pt with the same tensors as unet.safetensors, and both serve --checkpoint', async () => {
    const [fromTorch, fromSafetensors] = await Promise.all([loadCheckpoint(join(out, 'unet.pt')), loadCheckpoint(join(out, 'unet.safetensors'))]);
    expect([...fromTorch.keys()]).toEqual([...fromSafetensors.keys()]);
    for (const [name, tensor] of fromSafetensors) {
      expect(fromTorch.get(name)!.shape, name).toEqual(tensor.shape);
      expect(same(fromTorch.get(name)!, tensor), name).toBe(true);
    }
    const features: Buffer[][] = [];
    for (const file of ['unet.pt', 'unet.safetensors']) {
      const own = temporary();
      const extract = await diffssl([
        'extract',
        '--checkpoint',
        join(out, file),
        '--config',
        EMBEDDED_MODEL.flagsFile,
        ...EMBEDDED.slice(4),
        '--test-limit',
        '8',
        '--train-limit',
        '8',
        '--split',
        'test',
        '--blocks',
        '6',
        '--timesteps',
        '50',
        '--cache',
        own,
        '--provider',
        'cpu',
        '--quiet',
      ]);
      expect(extract.code, extract.stderr).toBe(0);
      const [entry] = readdirSync(own).filter((name) => name.startsWith('features-'));
      const data = join(own, entry!, 'data');
      features.push(
        readdirSync(data, { recursive: true })
          .map(String)
          .filter((name) => name.endsWith('.f32'))
          .sort()
          .map((name) => readFileSync(join(data, name))),
      );
    }
    expect(features[0]!.length).toBeGreaterThan(0);
    expect(features[0]!.map((bytes, i) => bytes.equals(features[1]![i]!))).toEqual(features[0]!.map(() => true));
  }, 300_000);

  it('evaluates the saved fine-tuned model (head and unet.safetensors) to the same accuracy', async () => {
    const evaluated = await diffssl(['eval', '--model', out, '--cache', cache, '--provider', 'cpu', '--quiet']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(report(join(out, 'eval')).top1).toBe(report(out).top1);
  }, 300_000);

  it('exports the fine-tuned model: the same logits as the frozen linear protocol on unet.safetensors with the saved head', async () => {
    const onnx = join(temporary(), 'model.onnx');
    const exported = await diffssl(['export', '--model', out, '--out', onnx]);
    expect(exported.code, exported.stderr).toBe(0);
    const info = JSON.parse(readFileSync(onnx.replace(/\.onnx$/, '.json'), 'utf8')) as ExportedClassifierInfo;
    const images = randomTensor([3, 3, 28, 28], 11);
    const feeds = classifierFeeds(info, images);
    const runner = await createRunner(onnx, { executionProviders: ['cpu'] });
    const { logits } = await runner.run(feeds);
    await runner.release();
    // The same model assembled independently: the frozen protocol on the fine-tuned checkpoint, with the saved head.
    const unet = new AdmUNet(embeddedFlags() as unknown as GuidedDiffusionFlags, await loadCheckpoint(join(out, 'unet.safetensors')));
    const frozen = createProtocolModel({ protocol: 'linear', blocks: [6], timesteps: [50], numClasses: 10 }, unet);
    frozen.modules()[0]!.loadStateDict(readSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors);
    const expected = await runOnnx({ logits: classifierGraphOutput(frozen) }, feeds);
    expect(relativeError(logits!, expected.logits!)).toBeLessThan(1e-5);
    // A control: the head on the original U-Net gives other logits.
    const original = createProtocolModel(
      { protocol: 'linear', blocks: [6], timesteps: [50], numClasses: 10 },
      new AdmUNet(embeddedFlags() as unknown as GuidedDiffusionFlags, await loadCheckpoint(EMBEDDED_MODEL.checkpoint)),
    );
    original.modules()[0]!.loadStateDict(readSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors);
    expect(relativeError(logits!, (await runOnnx({ logits: classifierGraphOutput(original) }, feeds)).logits!)).toBeGreaterThan(1e-4);
  }, 300_000);

  it('resumes a run killed mid-epoch to bit-identical U-Net and head weights', async () => {
    const killed = temporary();
    // The internal hook kills the process (SIGKILL, as a crash) right after step 2 of the 4 of epoch 2:
    // the checkpoint after epoch 1 is on disk, and epoch 2 has trained the U-Net twice more.
    const child = startDiffssl([...args, '--out', killed], { ...env, DIFFSSL_INTERNAL_CRASH_AFTER_STEP: '2:2' });
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    expect(exit.signal).toBe('SIGKILL');
    const checkpoint = join(killed, 'checkpoint.safetensors');
    const done = readTrainingState(readFileSync(checkpoint)).metadata.epochs_done;
    expect(done).toBe('1');
    expect(existsSync(join(killed, 'unet.safetensors'))).toBe(false);
    const resumed = await diffssl(
      [...args, '--out', killed, '--resume'].filter((a) => a !== '--quiet'),
      env,
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resumed from the checkpoint after epoch ${done}`));
    for (const file of ['unet.safetensors', 'model.safetensors']) {
      const [a, b] = [readSafetensors(readFileSync(join(out, file))).tensors, readSafetensors(readFileSync(join(killed, file))).tensors];
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [name, tensor] of a) expect(same(b.get(name)!, tensor), `${file} ${name}`).toBe(true);
    }
    expect(readFileSync(join(killed, 'unet.pt')).equals(readFileSync(join(out, 'unet.pt')))).toBe(true);
    expect(report(killed).epochs.map((e) => e.loss)).toEqual(report(out).epochs.map((e) => e.loss));
  }, 600_000);

  it('refuses --finetune for pixels and random, and the feature cache flags with it, with one line', async () => {
    const cases: [string[], RegExp][] = [
      [['--protocol', 'pixels'], /--finetune does not apply to protocol pixels; it applies to linear, attention, difformer, diffeed/],
      [['--protocol', 'random', '--blocks', '5', '--timesteps', '50'], /--finetune does not apply to protocol random/],
      [['--protocol', 'linear', '--blocks', '5', '--timesteps', '50', '--draws', '2'], /--draws does not apply with --finetune/],
      [['--protocol', 'linear', '--blocks', '5', '--timesteps', '50', '--no-cache'], /--cache\/--no-cache does not apply with --finetune/],
    ];
    for (const [extra, pattern] of cases) {
      const protocol = extra[1]!;
      const unet = protocol === 'pixels' ? EMBEDDED.slice(4) : protocol === 'random' ? ['--config', EMBEDDED_MODEL.flagsFile, ...EMBEDDED.slice(4)] : EMBEDDED;
      const result = await diffssl(['train', ...extra, '--finetune', ...unet, '--out', temporary(), '--provider', 'cpu', '--quiet']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  const heads: [string, string[], RegExp][] = [
    ['attention', ['--blocks', '8', '--timesteps', '50'], /^(time_embed\.|input_blocks\.[0-7]\.)/],
    ['difformer', ['--blocks', '5,8', '--timesteps', '50,150'], /^(time_embed\.|input_blocks\.[0-7]\.)/],
    // DifFeed: the second pass reads block 10 (the middle block); the first pass (to block 17) gives no gradient.
    ['diffeed', ['--blocks', '10', '--timesteps', '50', '--feedback-from', '14,17'], /^(time_embed\.|input_blocks\.|middle_block\.)/],
  ];
  it.each(heads)(
    'fine-tunes the U-Net under %s, only on the path to the deepest block read',
    async (protocol, extra, trained) => {
      const own = temporary();
      const result = await diffssl(
        [
          'train',
          '--protocol',
          protocol,
          '--finetune',
          ...EMBEDDED,
          '--train-limit',
          '32',
          '--test-limit',
          '8',
          '--epochs',
          '2',
          '--batch-size',
          '16',
          ...extra,
          '--provider',
          'cpu',
          '--quiet',
          '--out',
          own,
        ],
        env,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(report(own).epochs.every((epoch) => Number.isFinite(epoch.loss) && epoch.learning_rate === 1e-3)).toBe(true);
      const tuned = await loadCheckpoint(join(own, 'unet.pt'));
      const changed = [...original.keys()].filter((name) => !same(tuned.get(name)!, original.get(name)!));
      expect(changed.filter((name) => /^input_blocks\.0\.0\./.test(name))).toHaveLength(2);
      expect(changed.filter((name) => !trained.test(name))).toEqual([]);
      expect(readdirSync(cache)).toEqual([]);
    },
    300_000,
  );
});
