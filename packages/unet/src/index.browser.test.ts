/**
 * The browser entry, run in Node on onnxruntime-web's WASM backend: `@diffssl/core`
 * is replaced by its browser build, as a bundler targeting browsers would.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { HostTensor } from '@diffssl/core';
import { fixturePath, loadFeatures } from '@diffssl/testing';

vi.mock('@diffssl/core', async () => await import('../../core/src/index.browser.js'));

describe('@diffssl/unet in the browser (onnxruntime-web, WASM)', () => {
  it('extracts the same features as the reference U-Net', async () => {
    const { AdmUNet, createFeatureExtractor, featureKey } = await import('./index.browser.js');
    const { readTorchCheckpoint } = await import('./checkpoint/torch-checkpoint.js');
    const fixture = loadFeatures('adm-fm28');
    const unet = new AdmUNet(fixture.config as never, await readTorchCheckpoint(new Uint8Array(readFileSync(fixturePath('adm-fm28.pt')))));
    const warnings: string[] = [];
    const extractor = await createFeatureExtractor({ unet, blocks: [9], timesteps: [150], runner: { onWarning: (m) => warnings.push(m) } });
    expect(extractor.provider).toBe('wasm');
    const features = await extractor.extract(fixture.tensor('x_start'));
    expect(features.get(featureKey(150, 9))!.shape).toEqual([2, 64, 7, 7]);
    expect(warnings.join()).toMatch(/'webgpu' is unavailable/);
    await extractor.release();

    // The U-Net itself on WASM against the reference features of the fixture's x_t.
    const core = await import('@diffssl/core');
    const graph = new core.Graph();
    const x = graph.input('x', 'float32', ['batch', 3, 28, 28]);
    const t = graph.input('t', 'int64', ['batch']);
    const { blocks, output } = unet.build(graph, { x, timesteps: t, taps: [9], output: true });
    const runner = await core.createRunner(core.compileModel({ outputs: { block09: blocks.get(9)!, out: output! } }), { executionProviders: ['wasm'] });
    const result = await runner.run({ x: fixture.tensor('t150/x_t'), t: HostTensor.from('int64', [2], [150n, 150n]) });
    await runner.release();
    for (const name of ['block09', 'out']) {
      const expected = fixture.tensor(`t150/${name}`).toArray();
      const scale = Math.max(1, ...expected.map(Math.abs));
      expect(Math.max(...result[name]!.toArray().map((v, i) => Math.abs(v - expected[i]!))) / scale, name).toBeLessThanOrEqual(1e-4);
    }
  });
});
