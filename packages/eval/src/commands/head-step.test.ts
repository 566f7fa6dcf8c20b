/**
 * `diffssl head-step` against every head case of the reference fixture
 * (assets/fixtures/heads.safetensors): logits, loss, every gradient and every parameter
 * after the SGD step, under the reference's names; run as a separate process.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HostTensor, readSafetensors, writeSafetensors } from '@diffssl/core';
import { DifFormer, fusionKey } from '@diffssl/difformer';
import {
  adaptiveAvgPool64,
  batchNorm64,
  expectFirstStepRunningStatistics,
  expectMatchesReferenceStep,
  loadTensorFixture,
  randomTensor,
  referenceStep,
  relativeError,
  toTensor64,
  type TensorFixture,
} from '@diffssl/testing';
import { beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));
const run = promisify(execFile);
function cli(args: string[]) {
  return run(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', CLI, ...args], { timeout: 120_000 }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
}

/** Runs `diffssl head-step` on the head.json, params.safetensors and input.safetensors in `directory`; the tensors it wrote. */
async function headStepIn(directory: string, lr: string): Promise<Map<string, HostTensor>> {
  const out = join(directory, 'out.safetensors');
  const files = ['--head', join(directory, 'head.json'), '--params', join(directory, 'params.safetensors'), '--input', join(directory, 'input.safetensors')];
  const result = await cli(['head-step', ...files, '--lr', lr, '--out', out]);
  expect(result.code, result.stderr).toBe(0);
  return readSafetensors(readFileSync(out)).tensors;
}

let fixture: TensorFixture;
beforeAll(() => {
  fixture = loadTensorFixture('heads.safetensors');
});

function group(prefix: string): Map<string, HostTensor> {
  return fixture.group(prefix);
}

/** The head.json of each fixture case, from the fixture's metadata. */
function headJson(name: string): object {
  const meta = JSON.parse(fixture.metadata[name]!) as Record<string, unknown>;
  if (name === 'linear') return { kind: 'linear', ...meta, head_arc: '', num_classes: 10 };
  if (name === 'poolhead') return { kind: 'layers', ...meta };
  return { kind: 'fusion', ...meta };
}

function setup(name: string) {
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-head-step-'));
  writeFileSync(join(directory, 'head.json'), JSON.stringify(headJson(name)));
  // The parameters as the reference saved them (the poolhead's unused cls_token included).
  writeFileSync(join(directory, 'params.safetensors'), writeSafetensors(group(`${name}/param/`)));
  const inputs = name === 'linear' || name === 'poolhead' ? new Map([['input', fixture.tensor(`${name}/input`)]]) : group(`${name}/input/`);
  writeFileSync(join(directory, 'input.safetensors'), writeSafetensors(new Map([...inputs, ['labels', fixture.tensor('labels')]])));
  return directory;
}

describe('diffssl head-step', () => {
  it.each(['linear', 'attention', 'difformer', 'poolhead'])('reproduces the reference case %s', async (name) => {
    const directory = setup(name);
    const written = await headStepIn(directory, fixture.metadata[`${name}/lr`]!);
    const reference = referenceStep(fixture, name);
    const expectedKeys = [
      'logits',
      'loss',
      ...[...reference.grads.keys()].map((p) => `grad/${p}`),
      ...[...reference.after.keys()].map((p) => `after_sgd/${p}`),
    ];
    expect([...written.keys()].sort()).toEqual(expectedKeys.sort());
    const byPrefix = (prefix: string) =>
      new Map([...written].filter(([key]) => key.startsWith(prefix)).map(([key, tensor]) => [key.slice(prefix.length), tensor]));
    expectMatchesReferenceStep(
      { logits: written.get('logits')!, loss: written.get('loss')!, grads: byPrefix('grad/'), after: byPrefix('after_sgd/') },
      reference,
      name,
    );
  });

  it('writes BatchNorm buffers after the step (norm_type batch) and starts absent buffers at mean 0, var 1', async () => {
    const directory = setup('attention');
    const head = headJson('attention') as Record<string, unknown>;
    writeFileSync(join(directory, 'head.json'), JSON.stringify({ ...head, norm_type: 'batch' }));
    const params = group('attention/param/');
    params.set('pre_layer.12.1.weight', HostTensor.full('float32', [64], 1));
    params.set('pre_layer.12.1.bias', HostTensor.zeros('float32', [64]));
    writeFileSync(join(directory, 'params.safetensors'), writeSafetensors(params));
    const written = await headStepIn(directory, '0.05');
    // PyTorch's running statistics in float64, on the 7x7-pooled (identity here) input, with the control that the batch
    // variance is far from 1 (a buffer that started at 0, or kept 1, would fail).
    expectFirstStepRunningStatistics(written, 'pre_layer.12.1', fixture.tensor('attention/input/t150/block12'));
  });

  it('applies a BatchNorm pre-layer once per timestep (3 timesteps, uneven channels, pool 7 -> 3 and 5 -> 3), as PyTorch', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'diffssl-head-step-bn-'));
    const blocks = [
      { block: 3, channels: 5, resolution: 7 },
      { block: 6, channels: 12, resolution: 5 },
    ];
    const timesteps = [150, 10, 50];
    const spec = {
      kind: 'fusion',
      fusion_arc: 'Use_CLS_Token:True:8,Insert_CLS_Token,Attention:8:2:2:1,Extract_CLS_Token',
      blocks: [3, 6],
      t_list: timesteps,
      norm_type: 'batch',
      pre_pool_size: 3,
      num_classes: 4,
    };
    writeFileSync(join(directory, 'head.json'), JSON.stringify(spec));
    const fusion = new DifFormer({
      blocks,
      firstPassBlocks: [3, 6],
      timesteps,
      fusion: spec.fusion_arc,
      normType: 'batch',
      prePoolSize: 3,
      numClasses: 4,
      seed: 5,
    });
    const params = fusion.stateDict();
    blocks.forEach(({ block, channels }, i) => {
      params.set(`pre_layer.${block}.1.running_mean`, randomTensor([channels], 60 + i, -0.3, 0.3));
      params.set(`pre_layer.${block}.1.running_var`, randomTensor([channels], 70 + i, 0.5, 2));
      params.set(`pre_layer.${block}.1.num_batches_tracked`, HostTensor.from('int64', [], [7n]));
    });
    writeFileSync(join(directory, 'params.safetensors'), writeSafetensors(params));
    const inputs = new Map<string, HostTensor>();
    timesteps.forEach((t, ti) =>
      blocks.forEach(({ block, channels, resolution }, bi) =>
        inputs.set(fusionKey(t, block), randomTensor([6, channels, resolution, resolution], 80 + 10 * ti + bi, -1 - ti, 1 + 2 * ti)),
      ),
    );
    inputs.set('labels', HostTensor.from('int64', [6], [0n, 1n, 2n, 3n, 2n, 1n]));
    writeFileSync(join(directory, 'input.safetensors'), writeSafetensors(inputs));
    const written = await headStepIn(directory, '0.05');
    for (const { block } of blocks) {
      const read = (name: string) => params.get(`pre_layer.${block}.1.${name}`)!.toArray();
      const state = { weight: read('weight'), bias: read('bias'), runningMean: read('running_mean'), runningVar: read('running_var') };
      // t_list order, each application from the previous one's running statistics.
      for (const t of timesteps) {
        const { runningMean, runningVar } = batchNorm64(adaptiveAvgPool64(toTensor64(inputs.get(fusionKey(t, block))!), 3), state, 'train');
        Object.assign(state, { runningMean, runningVar });
      }
      const mean = written.get(`buffer_after/pre_layer.${block}.1.running_mean`)!;
      const variance = written.get(`buffer_after/pre_layer.${block}.1.running_var`)!;
      expect(relativeError(mean, HostTensor.from('float64', mean.shape, state.runningMean), 0), `running_mean ${block}`).toBeLessThan(1e-5);
      expect(relativeError(variance, HostTensor.from('float64', variance.shape, state.runningVar), 0), `running_var ${block}`).toBeLessThan(1e-5);
      expect(written.get(`buffer_after/pre_layer.${block}.1.num_batches_tracked`)!.get()).toBe(10);
    }
  });

  it('answers bad input with one line: unknown kind, mis-shaped and unexpected parameters, missing tensors', async () => {
    const directory = setup('linear');
    const args = (extra: Record<string, string>) => {
      const base: Record<string, string> = {
        '--head': join(directory, 'head.json'),
        '--params': join(directory, 'params.safetensors'),
        '--input': join(directory, 'input.safetensors'),
        '--lr': '0.01',
        '--out': join(directory, 'o.safetensors'),
        ...extra,
      };
      return ['head-step', ...Object.entries(base).flat()];
    };
    writeFileSync(join(directory, 'bad-kind.json'), JSON.stringify({ kind: 'conv' }));
    writeFileSync(
      join(directory, 'bad-params.safetensors'),
      writeSafetensors({ 'fcs.0.weight': HostTensor.zeros('float32', [10, 255]), 'fcs.9.weight': HostTensor.zeros('float32', [1]) }),
    );
    writeFileSync(join(directory, 'no-labels.safetensors'), writeSafetensors({ input: fixture.tensor('linear/input') }));
    const cases: [string[], RegExp][] = [
      [args({ '--head': join(directory, 'bad-kind.json') }), /"kind" must be "linear", "fusion" or "layers"; found "conv"/],
      [
        args({ '--params': join(directory, 'bad-params.safetensors') }),
        /1 missing \(fcs\.0\.bias\); 1 unexpected \(fcs\.9\.weight\); 1 mis-shaped \(fcs\.0\.weight: expected float32\[10, 256\], found float32\[10, 255\]\)/,
      ],
      [args({ '--input': join(directory, 'no-labels.safetensors') }), /expected a tensor 'labels'/],
      [args({ '--lr': 'fast' }), /--lr: expected a number; found 'fast'/],
      [args({ '--params': join(directory, 'nope.safetensors') }), /--params: cannot read/],
    ];
    for (const [argv, pattern] of cases) {
      const result = await cli(argv);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
