/**
 * Class-conditional ADM U-Nets (guided-diffusion's `class_cond`), checked on a
 * model built here: the embedded adm-fm28 weights plus a seeded label
 * embedding of 7 classes. guided-diffusion adds `label_emb(y)` to the output
 * of the time MLP, whose last layer ends with `+ time_embed.2.bias`; so the
 * class-conditional network with label y must equal the unconditional network
 * whose `time_embed.2.bias` is shifted by `label_emb.weight[y]`, a sum this
 * test computes by hand.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileModel, ConfigError, createRunner, Graph, HostTensor, writeSafetensors, type SymbolicTensor } from '@diffssl/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { embeddedFlags, fixturePath, randomTensor, relativeError } from '@diffssl/testing';
import {
  admConfig,
  AdmUNet,
  CheckpointMismatchError,
  createFeatureExtractor,
  expectedWeights,
  featureKey,
  readTorchCheckpoint,
  type GuidedDiffusionFlags,
} from './index.js';
import { weightSpecs } from './layout.js';

const flags = embeddedFlags() as unknown as GuidedDiffusionFlags;
const conditionalFlags: GuidedDiffusionFlags = { ...flags, class_cond: true };
const CLASSES = 7;
const EMBED = 4 * flags.num_channels;
const cpu = { executionProviders: ['cpu'] as const };

let base: Map<string, HostTensor>;
let labelEmbedding: HostTensor<'float32'>;
let conditional: AdmUNet;

/** The unconditional weights with time_embed.2.bias + label_emb.weight[label], added here in float32. */
function shiftedWeights(label: number): Map<string, HostTensor> {
  const bias = base.get('time_embed.2.bias')!.toArray();
  const row = labelEmbedding.data.subarray(label * EMBED, (label + 1) * EMBED);
  const weights = new Map(base);
  weights.set(
    'time_embed.2.bias',
    HostTensor.from(
      'float32',
      [EMBED],
      bias.map((b, i) => Math.fround(b + row[i]!)),
    ),
  );
  return weights;
}

const blockName = (n: number) => `block${String(n).padStart(2, '0')}`;

/** Runs every block and the output of a U-Net on x_t at timesteps t (with labels when given). */
async function runAll(unet: AdmUNet, x: HostTensor, t: number[], labels?: number[]): Promise<Record<string, HostTensor>> {
  const graph = new Graph();
  const input = graph.input('x', 'float32', ['batch', 3, 28, 28]);
  const timesteps = graph.input('t', 'int64', ['batch']);
  const classLabels = labels ? graph.input('y', 'int64', ['batch']) : undefined;
  const taps = Array.from({ length: unet.blockCount }, (_, i) => i + 1);
  const { blocks, output } = unet.build(graph, { x: input, timesteps, taps, output: true, ...(classLabels ? { classLabels } : {}) });
  const outputs: Record<string, SymbolicTensor> = { out: output! };
  for (const [n, tensor] of blocks) outputs[blockName(n)] = tensor;
  const runner = await createRunner(compileModel({ outputs }), cpu);
  const feeds: Record<string, HostTensor> = { x, t: HostTensor.from('int64', [t.length], t.map(BigInt)) };
  if (labels) feeds.y = HostTensor.from('int64', [labels.length], labels.map(BigInt));
  try {
    return await runner.run(feeds);
  } finally {
    await runner.release();
  }
}

beforeAll(async () => {
  base = await readTorchCheckpoint(fixturePath('adm-fm28.pt'));
  labelEmbedding = randomTensor([CLASSES, EMBED], 2024, -1, 1);
  conditional = new AdmUNet(conditionalFlags, new Map([...base, ['label_emb.weight', labelEmbedding]]));
});

describe('class-conditional ADM U-Net', () => {
  it('reads the number of classes from label_emb.weight (guided-diffusion NUM_CLASSES = 1000 before a checkpoint says otherwise)', () => {
    expect(conditional.config.numClasses).toBe(CLASSES);
    expect(conditional.info.numClasses).toBe(CLASSES);
    expect(expectedWeights(admConfig(conditionalFlags)).get('label_emb.weight')).toEqual([1000, EMBED]);
    expect(new AdmUNet(flags, base).info.numClasses).toBeUndefined();
  });

  it('equals the unconditional network with time_embed.2.bias shifted by label_emb[y], image by image, at every block and the output', async () => {
    const x = randomTensor([3, 3, 28, 28], 7, -1, 1);
    const t = [150, 150, 400];
    const labels = [2, 5, 0];
    const batched = await runAll(conditional, x, t, labels);
    for (let b = 0; b < 3; b++) {
      const image = x.slice([b], [b + 1]).contiguous();
      const shifted = await runAll(new AdmUNet(flags, shiftedWeights(labels[b]!)), image, [t[b]!]);
      const errors = Object.keys(shifted).map((name) => [name, relativeError(batched[name]!.slice([b], [b + 1]).contiguous(), shifted[name]!)] as const);
      expect(
        errors.filter(([, error]) => !(error <= 1e-5)),
        `image ${b} (label ${labels[b]})`,
      ).toEqual([]);
    }
    // The label matters: the unshifted network differs from the label-2 result.
    const plain = await runAll(new AdmUNet(flags, base), x.slice([0], [1]).contiguous(), [150]);
    expect(relativeError(batched.out!.slice([0], [1]).contiguous(), plain.out!)).toBeGreaterThan(1e-2);
  });

  it('refuses a build without classLabels, and classLabels for an unconditional model, naming the option', () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', ['batch', 3, 28, 28]);
    const t = graph.input('t', 'int64', ['batch']);
    const y = graph.input('y', 'int64', ['batch']);
    expect(() => conditional.build(graph, { x, timesteps: t, taps: [3] })).toThrow(ConfigError);
    expect(() => conditional.build(graph, { x, timesteps: t, taps: [3] })).toThrow(/class-conditional \(7 classes\); pass classLabels/);
    expect(() => new AdmUNet(flags, base).build(graph, { x, timesteps: t, classLabels: y, taps: [3] })).toThrow(
      /classLabels were given, but this model is unconditional/,
    );
    const float = graph.input('labels', 'float32', ['batch']);
    expect(() => conditional.build(graph, { x, timesteps: t, classLabels: float, taps: [3] })).toThrow(/int64 classLabels/);
  });

  it('says which way class_cond disagrees with the checkpoint', () => {
    expect(() => new AdmUNet(conditionalFlags, base)).toThrow(CheckpointMismatchError);
    expect(() => new AdmUNet(conditionalFlags, base)).toThrow(
      /missing \(label_emb\.weight\).*no label_emb\.weight: it is unconditional, set class_cond: false/,
    );
    expect(() => new AdmUNet(flags, conditional.weightTensors())).toThrow(/unexpected \(label_emb\.weight\).*set class_cond: true/);
  });

  it("takes class_cond and the other booleans with guided-diffusion's str2bool meaning", () => {
    expect(admConfig({ ...flags, class_cond: 'False' as never }).numClasses).toBeUndefined();
    expect(admConfig({ ...flags, class_cond: 'yes' as never }).numClasses).toBe(1000);
    expect(admConfig({ ...flags, class_cond: 0 as never }).numClasses).toBeUndefined();
    expect(() => admConfig({ ...flags, class_cond: 'maybe' as never })).toThrow(/class_cond must be a boolean; found "maybe"/);
    expect(admConfig({ ...flags, use_scale_shift_norm: 'f' as never }).useScaleShiftNorm).toBe(false);
  });
});

describe('class-conditional feature extraction from a checkpoint file', () => {
  let path: string;
  beforeAll(() => {
    path = join(mkdtempSync(join(tmpdir(), 'diffssl-conditional-')), 'conditional.safetensors');
    writeFileSync(path, writeSafetensors(conditional.weightTensors() as Map<string, HostTensor>));
  });

  it('with a fixed classLabel or per-image labels, equals extraction from the bias-shifted unconditional network', async () => {
    const x = randomTensor([2, 3, 28, 28], 11, -1, 1);
    const ids = [4, 9];
    const fromFile = await createFeatureExtractor({
      checkpoint: path,
      config: conditionalFlags,
      blocks: [6, 12],
      timesteps: [150],
      classLabel: 5,
      runner: cpu,
    });
    const fixed = await fromFile.extract(x, { ids });
    const perImage = await fromFile.extract(x, { ids, labels: [1, 6] });
    await fromFile.release();
    const reference = async (label: number) => {
      const extractor = await createFeatureExtractor({ unet: new AdmUNet(flags, shiftedWeights(label)), blocks: [6, 12], timesteps: [150], runner: cpu });
      try {
        return await extractor.extract(x, { ids });
      } finally {
        await extractor.release();
      }
    };
    const five = await reference(5);
    const [one, six] = [await reference(1), await reference(6)];
    for (const block of [6, 12]) {
      const key = featureKey(150, block);
      expect(relativeError(fixed.get(key)!, five.get(key)!), `classLabel 5, ${key}`).toBeLessThanOrEqual(1e-5);
      expect(relativeError(perImage.get(key)!.slice([0], [1]).contiguous(), one.get(key)!.slice([0], [1]).contiguous()), `label 1, ${key}`).toBeLessThanOrEqual(
        1e-5,
      );
      expect(relativeError(perImage.get(key)!.slice([1], [2]).contiguous(), six.get(key)!.slice([1], [2]).contiguous()), `label 6, ${key}`).toBeLessThanOrEqual(
        1e-5,
      );
    }
  });

  it('asks for labels by name when none are given', async () => {
    const extractor = await createFeatureExtractor({ checkpoint: path, config: conditionalFlags, blocks: [3], timesteps: [0], runner: cpu });
    await expect(extractor.extract(randomTensor([1, 3, 28, 28], 1))).rejects.toThrow(
      /pass labels \(one per image\) to extract\(\)\/stream\(\), or classLabel to createFeatureExtractor/,
    );
    await extractor.release();
  });
});

describe('float16 precision plan', () => {
  it("runs exactly the block convolutions in float16 and keeps embeddings, normalization and guided-diffusion's out head float32", () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', ['batch', 3, 28, 28]);
    const t = graph.input('t', 'int64', ['batch']);
    const y = graph.input('y', 'int64', ['batch']);
    const { output } = conditional.build(graph, { x, timesteps: t, classLabels: y, taps: [], output: true, dtype: 'float16' });
    const model = compileModel({ outputs: { out: output! } });
    // Checkpoint weights only (scalar constants such as the attention scale are named const_*).
    const weights = [...model.initializers].filter(([name]) => !name.startsWith('const_'));
    const halves = weights.filter(([, tensor]) => tensor.dtype === 'float16').map(([name]) => name.replace(/(\.matrix)?\.float16$/, ''));
    const singles = weights.filter(([, tensor]) => tensor.dtype === 'float32').map(([name]) => name);
    // guided-diffusion's convert_module_to_f16 converts the Conv1d/Conv2d of input_blocks, middle_block and output_blocks, nothing else.
    const convolutions = [...expectedWeights(conditional.config)]
      .filter(
        ([name, shape]) =>
          /^(input_blocks|middle_block|output_blocks)\./.test(name) &&
          (shape.length >= 3 || /(in_layers\.2|out_layers\.3|skip_connection|qkv|proj_out|op|conv|\.0\.0)\.bias$/.test(name)),
      )
      .map(([name]) => name);
    expect(halves.sort()).toEqual(convolutions.sort());
    expect(halves.sort()).toEqual(
      weightSpecs(conditional.config)
        .filter((spec) => spec.precision === 'compute')
        .map((spec) => spec.name)
        .sort(),
    );
    for (const name of [
      'out.0.weight',
      'out.0.bias',
      'out.2.weight',
      'out.2.bias',
      'label_emb.weight',
      'time_embed.0.weight',
      'input_blocks.1.0.in_layers.0.weight',
      'input_blocks.1.0.emb_layers.1.weight',
    ]) {
      expect(singles, name).toContain(name);
    }
    expect(output!.dtype).toBe('float32');
  });
});
