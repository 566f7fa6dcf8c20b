/**
 * One training step of every head case of `assets/fixtures/heads.safetensors`
 * on onnxruntime-node's WebGPU provider (no fallback provider): logits, loss,
 * gradients and parameters after SGD within the fixture's rule, BatchNorm
 * buffers against float64, and >= 95% of each step graph's FLOPs on WebGPU.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPlacement, HostTensor, readSafetensors, writeSafetensors, type PlacementReport } from '@diffssl/core';
import { expectFirstStepRunningStatistics, expectMatchesReferenceStep, loadTensorFixture, referenceStep, type TensorFixture } from '@diffssl/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { headStep } from '../src/commands/head-step.js';

/** Share of a head training step's FLOPs that must run on WebGPU (issue 14). */
const STEP_SHARE = 0.95;

let fixture: TensorFixture;
beforeAll(() => {
  fixture = loadTensorFixture('heads.safetensors');
});

/** The head.json of each fixture case, from the fixture's metadata (as head-step.test.ts). */
function headJson(name: string): Record<string, unknown> {
  const meta = JSON.parse(fixture.metadata[name]!) as Record<string, unknown>;
  if (name === 'linear') return { kind: 'linear', ...meta, head_arc: '', num_classes: 10 };
  if (name === 'poolhead') return { kind: 'layers', ...meta };
  return { kind: 'fusion', ...meta };
}

/** Writes a case's head.json, parameters and inputs, runs `headStep` on WebGPU and returns what it wrote and the placement. */
async function stepOnWebGpu(name: string, head: Record<string, unknown>, params: Map<string, HostTensor>, lr: number) {
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-gpu-head-'));
  writeFileSync(join(directory, 'head.json'), JSON.stringify(head));
  writeFileSync(join(directory, 'params.safetensors'), writeSafetensors(params));
  const inputs = name === 'linear' || name === 'poolhead' ? new Map([['input', fixture.tensor(`${name}/input`)]]) : fixture.group(`${name}/input/`);
  writeFileSync(join(directory, 'input.safetensors'), writeSafetensors(new Map([...inputs, ['labels', fixture.tensor('labels')]])));
  const reports: PlacementReport[] = [];
  const out = join(directory, 'out.safetensors');
  await headStep({
    head: join(directory, 'head.json'),
    params: join(directory, 'params.safetensors'),
    input: join(directory, 'input.safetensors'),
    lr,
    out,
    providers: ['webgpu'],
    onPlacement: (report) => {
      reports.push(report);
      process.stderr.write(`${formatPlacement(report, `head step ${name}`, 4).join('\n')}\n`);
    },
  });
  expect(reports).toHaveLength(1);
  const report = reports[0]!;
  expect(report.provider).toBe('WebGpuExecutionProvider');
  expect(
    report.share,
    `${name}: share of the step's FLOPs on WebGPU; fell back: ${report.fallbacks.map((n) => `${n.opType} ${n.name}`).join(', ')}`,
  ).toBeGreaterThanOrEqual(STEP_SHARE);
  return { written: readSafetensors(readFileSync(out)).tensors, inputs };
}

describe('a head training step on WebGPU', () => {
  it.each(['linear', 'attention', 'difformer', 'poolhead'])('reproduces the reference case %s', async (name) => {
    const { written } = await stepOnWebGpu(name, headJson(name), fixture.group(`${name}/param/`), Number(fixture.metadata[`${name}/lr`]!));
    const byPrefix = (prefix: string) =>
      new Map([...written].filter(([key]) => key.startsWith(prefix)).map(([key, tensor]) => [key.slice(prefix.length), tensor]));
    expectMatchesReferenceStep(
      { logits: written.get('logits')!, loss: written.get('loss')!, grads: byPrefix('grad/'), after: byPrefix('after_sgd/') },
      referenceStep(fixture, name),
      name,
    );
  });

  it('updates BatchNorm buffers as PyTorch does (norm_type batch), against float64', async () => {
    const params = fixture.group('attention/param/');
    params.set('pre_layer.12.1.weight', HostTensor.full('float32', [64], 1));
    params.set('pre_layer.12.1.bias', HostTensor.zeros('float32', [64]));
    const { written } = await stepOnWebGpu('attention', { ...headJson('attention'), norm_type: 'batch' }, params, 0.05);
    // PyTorch's running statistics in float64, with the control that the batch variance is far from 1.
    expectFirstStepRunningStatistics(written, 'pre_layer.12.1', fixture.tensor('attention/input/t150/block12'));
    expect(written.get('buffer_after/pre_layer.12.1.num_batches_tracked')!.get()).toBe(1);
  });
});
