/**
 * One epoch of every protocol on a small Fashion-MNIST subset, on the WebGPU
 * provider (no fallback) and on the CPU provider: the loss of every step must
 * agree within 1e-4 relative, and every graph the WebGPU run opens must run
 * >= 95% of its FLOPs on WebGPU (>= 99% for the U-Net's extraction graphs).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPlacement, type ExecutionProvider, type PlacementReport } from '@diffssl/core';
import { EMBEDDED_DATA, EMBEDDED_MODEL } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { PROTOCOLS, type Protocol } from '../src/heads/registry.js';
import { runProtocol, type RunOptions } from '../src/pipeline/run.js';
import type { TrainingStep } from '../src/training/trainer.js';

/** Tiny settings per protocol (as the end-to-end CLI test's, smaller). */
const SETTINGS: Record<Protocol, Partial<RunOptions>> = {
  pixels: {},
  random: { blocks: [5], timesteps: [50], prePoolSize: 4 },
  linear: { blocks: [10], timesteps: [50] },
  attention: { blocks: [10], timesteps: [50] },
  difformer: { blocks: [9, 10], timesteps: [50, 150] },
  diffeed: { blocks: [10], timesteps: [50], feedbackFrom: [14, 17] },
};

/** Trains one epoch of 32 images (4 steps of 8) on a provider; every step's loss and, on WebGPU, every graph's placement. */
async function oneEpoch(protocol: Protocol, provider: ExecutionProvider) {
  const steps: TrainingStep[] = [];
  const placements: { outputs: readonly string[]; report: PlacementReport }[] = [];
  const model =
    protocol === 'pixels'
      ? {}
      : protocol === 'random'
        ? { config: EMBEDDED_MODEL.flagsFile }
        : { checkpoint: EMBEDDED_MODEL.checkpoint, config: EMBEDDED_MODEL.flagsFile };
  await runProtocol({
    protocol,
    ...model,
    ...SETTINGS[protocol],
    data: EMBEDDED_DATA,
    trainLimit: 32,
    testLimit: 16,
    epochs: 1,
    batchSize: 8,
    out: mkdtempSync(join(tmpdir(), `diffssl-gpu-${protocol}-`)),
    // A cache per run: the WebGPU run must extract its own features.
    cacheDirectory: mkdtempSync(join(tmpdir(), 'diffssl-gpu-cache-')),
    progress: 'off',
    runner: {
      executionProviders: [provider],
      strict: true,
      ...(provider === 'webgpu'
        ? {
            onPlacement: (report: PlacementReport, outputs: readonly string[]) => {
              placements.push({ outputs, report });
              process.stderr.write(`${formatPlacement(report, `${protocol}: ${outputs.slice(0, 3).join(', ')}`, 3).join('\n')}\n`);
            },
          }
        : {}),
    },
    onStep: (step) => steps.push(step),
  });
  return { steps, placements };
}

describe('one epoch of every protocol on WebGPU and on the CPU provider', () => {
  it('covers every protocol of the registry', () => {
    expect(Object.keys(SETTINGS).sort()).toEqual([...PROTOCOLS].sort());
  });

  it.each([...PROTOCOLS])('%s: the same loss at every step within 1e-4 relative; its graphs on WebGPU', async (protocol) => {
    const gpu = await oneEpoch(protocol, 'webgpu');
    const cpu = await oneEpoch(protocol, 'cpu');
    expect(cpu.steps.map((step) => step.batch)).toEqual([1, 2, 3, 4]);
    expect(gpu.steps.map((step) => step.batch)).toEqual([1, 2, 3, 4]);
    gpu.steps.forEach((step, i) => {
      const expected = cpu.steps[i]!.loss;
      expect(Math.abs(step.loss - expected) / Math.abs(expected), `${protocol} step ${step.batch}: ${step.loss} against ${expected}`).toBeLessThanOrEqual(1e-4);
    });
    // The training step is among the graphs (its outputs include the loss), and so is the U-Net's where the protocol reads one.
    expect(gpu.placements.length).toBeGreaterThanOrEqual(2);
    for (const { outputs, report } of gpu.placements) {
      const extraction = outputs.every((name) => /^(t\d+\/)?block\d+$/.test(name));
      expect(
        report.share,
        `${protocol} graph of ${outputs.slice(0, 3).join(', ')}: share on WebGPU; fell back: ${report.fallbacks.map((n) => `${n.opType} ${n.name}`).join(', ')}`,
      ).toBeGreaterThanOrEqual(extraction ? 0.99 : 0.95);
    }
  });
});
