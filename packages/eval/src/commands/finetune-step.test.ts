/**
 * `diffssl finetune-step` (and `finetuneStep`) against the reference's
 * fine-tuning case (assets/fixtures/finetune.safetensors: expected values in
 * float64), and, for another U-Net layout (the 37-block random model) with a
 * fusion head over several blocks and timesteps, against central finite
 * differences of the loss in float64 and the list of weights the reference
 * leaves frozen.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BuildContext, crossEntropy, evaluateReference, Graph, HostTensor, readSafetensors, writeSafetensors, type SymbolicTensor } from '@diffssl/core';
import { constantTimesteps } from '@diffssl/diffeed';
import { DifFormer, fusionKey } from '@diffssl/difformer';
import { AdmUNet, loadCheckpoint, noiseSchedule, qSampleGraph, type GuidedDiffusionFlags } from '@diffssl/unet';
import { fixturePath, loadFeatures, loadTensorFixture, type TensorFixture } from '@diffssl/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { unetModule } from '../protocols/finetune.js';
import { finetuneStep } from './finetune-step.js';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));
const run = promisify(execFile);
function cli(args: string[]) {
  return run(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', CLI, ...args], { timeout: 180_000 }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
}

let fixture: TensorFixture;
beforeAll(() => {
  fixture = loadTensorFixture('finetune.safetensors');
});

/** The fixture README's criterion: max |a - b| <= 2e-4 * max |b| + 1e-7, per tensor. */
function expectWithinScale(actual: HostTensor, expected: HostTensor, label: string): void {
  expect(actual.shape, label).toEqual(expected.shape);
  const a = actual.toArray();
  const b = expected.toArray();
  let [worst, scale] = [0, 0];
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    const difference = Math.abs(a[i]! - b[i]!);
    if (!(difference <= worst)) worst = Number.isNaN(difference) ? Infinity : difference;
  }
  expect(worst, `${label}: max |a - b| = ${worst}, max |b| = ${scale}`).toBeLessThanOrEqual(2e-4 * scale + 1e-7);
}

/** Writes the fixture's case as the command's files. */
function setup() {
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-finetune-step-'));
  const files = {
    checkpoint: fixturePath('adm-fm28.pt'),
    config: join(directory, 'flags.json'),
    head: join(directory, 'head.json'),
    params: join(directory, 'params.safetensors'),
    input: join(directory, 'input.safetensors'),
    out: join(directory, 'out.safetensors'),
  };
  writeFileSync(files.config, fixture.metadata.config!);
  writeFileSync(files.head, fixture.metadata.head!);
  writeFileSync(files.params, writeSafetensors(fixture.group('head/')));
  writeFileSync(files.input, writeSafetensors(new Map(['x_start', 'noise/t50', 'labels'].map((name) => [name, fixture.tensor(name)]))));
  return files;
}

async function expectMatchesFixture(written: Map<string, HostTensor>): Promise<void> {
  const expectedKeys = [...fixture.tensors.keys()].filter((key) => /^(logits|loss|grad\/|after_sgd\/)/.test(key));
  expect([...written.keys()].sort()).toEqual(expectedKeys.sort());
  // 96 U-Net parameters (time_embed and blocks 1-8), none of block 9 or later, none of out.*.
  expect(expectedKeys.filter((key) => key.startsWith('grad/unet.'))).toHaveLength(96);
  for (const key of expectedKeys) expectWithinScale(written.get(key)!, fixture.tensor(key), key);
  // The updates themselves (after - before), which are too small to see in the parameters at that tolerance.
  const checkpoint = await loadCheckpoint(fixturePath('adm-fm28.pt'));
  for (const key of expectedKeys.filter((k) => k.startsWith('after_sgd/'))) {
    const name = key.slice('after_sgd/'.length);
    const before = (name.startsWith('unet.') ? checkpoint.get(name.slice(5)) : fixture.tensor(`head/${name}`))!.toArray();
    const [got, expected] = [written.get(key)!.toArray(), fixture.tensor(key).toArray()];
    let [worst, scale, ulp] = [0, 0, 0];
    for (let i = 0; i < before.length; i++) {
      scale = Math.max(scale, Math.abs(expected[i]! - before[i]!));
      ulp = Math.max(ulp, Math.abs(before[i]!) * 2 ** -23);
      worst = Math.max(worst, Math.abs(got[i]! - before[i]! - (expected[i]! - before[i]!)));
    }
    expect(worst, `update of ${name}: differs by ${worst}, update scale ${scale}`).toBeLessThanOrEqual(2e-3 * scale + 2 * ulp);
  }
}

describe('finetune-step: the reference case (adm-fm28, GD(L) on block 8 at t=50)', () => {
  it('finetuneStep matches logits, loss, every gradient and every parameter after the step', async () => {
    const files = setup();
    const names = await finetuneStep({ ...files, lr: Number(fixture.metadata.lr) });
    const written = readSafetensors(readFileSync(files.out)).tensors;
    expect(names.sort()).toEqual([...written.keys()].sort());
    await expectMatchesFixture(written);
  });

  it('diffssl finetune-step writes the same, and answers bad input with one line', async () => {
    const files = setup();
    const argv = (extra: Record<string, string> = {}) => [
      'finetune-step',
      ...Object.entries({ ...Object.fromEntries(Object.entries(files).map(([k, v]) => [`--${k}`, v])), '--lr': fixture.metadata.lr!, ...extra }).flat(),
    ];
    const result = await cli(argv());
    expect(result.code, result.stderr).toBe(0);
    await expectMatchesFixture(readSafetensors(readFileSync(files.out)).tensors);
    writeFileSync(join(files.out, '..', 'no-block.json'), JSON.stringify({ kind: 'linear', pre_pool_size: 2, num_classes: 10 }));
    writeFileSync(join(files.out, '..', 'dropout.json'), JSON.stringify({ ...JSON.parse(fixture.metadata.config!), dropout: 0.1 }));
    const cases: [string[], RegExp][] = [
      [argv({ '--head': join(files.out, '..', 'no-block.json') }), /a linear head needs "block" and "t_list"/],
      [argv({ '--config': join(files.out, '..', 'dropout.json') }), /dropout 0\.1; fine-tuning with dropout is not supported/],
      [argv({ '--lr': 'x' }), /--lr: expected a number; found 'x'/],
    ];
    for (const [args, pattern] of cases) {
      const bad = await cli(args);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(pattern);
      expect(bad.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('finetune-step: a float16 checkpoint', () => {
  it('fine-tunes in float32: the same step as the float32 weights rounded to half precision', async () => {
    const files = setup();
    const weights = await loadCheckpoint(fixturePath('adm-fm28.pt'));
    const half = join(files.out, '..', 'half.safetensors');
    writeFileSync(half, writeSafetensors(new Map([...weights].map(([name, tensor]) => [name, tensor.cast('float16')]))));
    const rounded = join(files.out, '..', 'rounded.safetensors');
    writeFileSync(rounded, writeSafetensors(new Map([...weights].map(([name, tensor]) => [name, tensor.cast('float16').cast('float32')]))));
    const [fromHalf, fromRounded] = [join(files.out, '..', 'from-half.safetensors'), join(files.out, '..', 'from-rounded.safetensors')];
    await finetuneStep({ ...files, checkpoint: half, out: fromHalf, lr: 1e-3 });
    await finetuneStep({ ...files, checkpoint: rounded, out: fromRounded, lr: 1e-3 });
    const [a, b] = [readSafetensors(readFileSync(fromHalf)).tensors, readSafetensors(readFileSync(fromRounded)).tensors];
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    expect(a.get('after_sgd/unet.input_blocks.0.0.weight')!.dtype).toBe('float32');
    for (const [name, tensor] of b) expect(Array.from(a.get(name)!.toArray()), name).toEqual(Array.from(tensor.toArray()));
    // And near the float32 checkpoint's step (half-precision weights move the loss a little).
    expect(Math.abs(a.get('loss')!.get(0) - fixture.tensor('loss').get(0))).toBeLessThan(1e-2);
  });
});

describe('finetune-step: another layout (37 blocks) and a fusion head over two blocks and two timesteps', () => {
  const blocks = [2, 4];
  const timesteps = [90, 300];
  const fusionArc = 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token';

  it('gives the gradients that central finite differences of the float64 loss give, and none to blocks after the deepest read or out.*', async () => {
    const features = loadFeatures('adm-37block-random');
    const directory = mkdtempSync(join(tmpdir(), 'diffssl-finetune-37-'));
    const files = {
      checkpoint: fixturePath('adm-37block-random.pt'),
      config: join(directory, 'flags.json'),
      head: join(directory, 'head.json'),
      params: join(directory, 'params.safetensors'),
      input: join(directory, 'input.safetensors'),
      out: join(directory, 'out.safetensors'),
    };
    const spec = { kind: 'fusion', fusion_arc: fusionArc, blocks, t_list: timesteps, pre_pool_size: 4, num_classes: 5 };
    writeFileSync(files.config, JSON.stringify(features.config));
    writeFileSync(files.head, JSON.stringify(spec));
    const weights = await loadCheckpoint(files.checkpoint);
    const unet = new AdmUNet(features.config as unknown as GuidedDiffusionFlags, weights);
    const head = DifFormer.fromUNet(unet, { firstPassBlocks: blocks, timesteps, fusion: fusionArc, prePoolSize: 4, numClasses: 5, seed: 7 });
    writeFileSync(files.params, writeSafetensors(head.stateDict()));
    const feeds: Record<string, HostTensor> = {
      x_start: features.tensor('x_start'),
      'noise/t90': features.tensor('t90/noise'),
      'noise/t300': features.tensor('t300/noise'),
      labels: HostTensor.from('int64', [2], [1n, 4n]),
    };
    writeFileSync(files.input, writeSafetensors(new Map(Object.entries(feeds))));
    await finetuneStep({ ...files, lr: 1e-3 });
    const written = readSafetensors(readFileSync(files.out)).tensors;

    // Trained: time_embed and the weights of encoder blocks 1-4 (input_blocks.0-3), and the head; nothing else.
    const unetGrads = [...written.keys()].filter((key) => key.startsWith('grad/unet.')).map((key) => key.slice('grad/unet.'.length));
    const expected = [...weights.keys()].filter((name) => /^(time_embed\.|input_blocks\.[0-3]\.)/.test(name));
    expect(unetGrads.sort()).toEqual(expected.sort());
    expect([...written.keys()].filter((key) => key.startsWith('grad/') && !key.startsWith('grad/unet.')).sort()).toEqual(
      [...head.stateDict().keys()].map((name) => `grad/${name}`).sort(),
    );

    // The loss as a float64 function of the U-Net's weights.
    const graph = new Graph();
    const trainable = unet.trainableWeights();
    const context = new BuildContext(graph, [unetModule(trainable), head], { mode: 'train' });
    const xStart = graph.input('x_start', 'float32', [2, 3, 32, 32]);
    const schedule = noiseSchedule('linear', 1000);
    const inputs = new Map<string, SymbolicTensor>();
    for (const t of timesteps) {
      const steps = constantTimesteps(graph, t, xStart);
      const xt = qSampleGraph(schedule, xStart, graph.input(`noise/t${t}`, 'float32', [2, 3, 32, 32]), steps);
      for (const [block, tensor] of unet.build(graph, { x: xt, timesteps: steps, taps: blocks, trainable: { context, weights: trainable } }).blocks)
        inputs.set(fusionKey(t, block), tensor);
    }
    const loss = crossEntropy(head.forward(context, inputs), graph.input('labels', 'int64', [2]));
    const byName = new Map(context.trainableWeights().map(({ weight }) => [weight.name!, weight]));
    for (const name of [
      'unet.input_blocks.0.0.weight',
      'unet.time_embed.0.weight',
      'unet.input_blocks.1.0.emb_layers.1.weight',
      'unet.input_blocks.3.0.out_layers.3.weight',
    ]) {
      const weight = byName.get(name)!;
      const gradient = written.get(`grad/${name}`)!.toArray();
      const scale = gradient.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // The element with the largest gradient, so that a zero or tiny wrong gradient cannot pass.
      const index = gradient.reduce((best, v, i) => (Math.abs(v) > Math.abs(gradient[best]!) ? i : best), 0);
      const original = weight.value!;
      const lossWith = (delta: number) => {
        const shifted = original.cast('float64');
        shifted.data[index] = shifted.data[index]! + delta;
        weight.value = shifted as never;
        return evaluateReference([loss], feeds)[0]!.get();
      };
      const h = 1e-3;
      const finiteDifference = (lossWith(h) - lossWith(-h)) / (2 * h);
      weight.value = original;
      expect(scale, name).toBeGreaterThan(1e-6);
      expect(
        Math.abs(gradient[index]! - finiteDifference),
        `${name}[${index}]: autodiff ${gradient[index]}, finite differences ${finiteDifference}`,
      ).toBeLessThanOrEqual(2e-3 * Math.abs(finiteDifference) + 1e-7);
    }
    // The update is the gradient times the learning rate.
    const before = weights.get('input_blocks.0.0.weight')!.toArray();
    const after = written.get('after_sgd/unet.input_blocks.0.0.weight')!.toArray();
    const gradient = written.get('grad/unet.input_blocks.0.0.weight')!.toArray();
    for (let i = 0; i < before.length; i += 97)
      expect(Math.abs(after[i]! - (before[i]! - 1e-3 * gradient[i]!))).toBeLessThanOrEqual(Math.abs(before[i]!) * 2 ** -22 + 1e-12);
  }, 300_000);
});
