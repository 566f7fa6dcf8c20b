/**
 * The browser entry, run in Node on onnxruntime-web's WASM backend: `@diffssl/core`
 * is replaced by its browser build, as a bundler targeting browsers would.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { HostTensor } from '@diffssl/core';
import { fixturePath, loadFeatures, relativeError } from '@diffssl/testing';

vi.mock('@diffssl/core', async () => await import('../../core/src/index.browser.js'));

describe('@diffssl/unet in the browser (onnxruntime-web, WASM)', () => {
  it('extracts the same features as the reference U-Net', async () => {
    const { AdmUNet, createFeatureExtractor, featureKey } = await import('./index.browser.js');
    const { readTorchCheckpoint } = await import('./checkpoint/torch-checkpoint.js');
    const fixture = loadFeatures('adm-fm28');
    const unet = new AdmUNet(fixture.config as never, await readTorchCheckpoint(new Uint8Array(readFileSync(fixturePath('adm-fm28.pt')))));
    const warnings: string[] = [];
    // Two blocks at two resolutions, two timesteps, a seed other than the default, one image per run.
    const extraction = { blocks: [5, 9], timesteps: [50, 150], seed: 3, batchSize: 1 };
    const extractor = await createFeatureExtractor({ unet, ...extraction, runner: { onWarning: (m) => warnings.push(m) } });
    expect(extractor.provider).toBe('wasm');
    const xStart = fixture.tensor('x_start');
    const features = await extractor.extract(xStart);
    const withIds = await extractor.extract(xStart, { ids: [11, 12] });
    expect(features.get(featureKey(150, 9))!.shape).toEqual([2, 64, 7, 7]);
    expect(features.get(featureKey(150, 5))!.shape).toEqual([2, 64, 14, 14]);
    // The default provider, auto, takes WASM without a word where navigator.gpu is absent.
    expect(warnings).toEqual([]);
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
      // relativeError checks the shapes first: a short or empty output cannot pass.
      expect(relativeError(result[name]!, fixture.tensor(`t150/${name}`)), name).toBeLessThanOrEqual(1e-4);
    }

    // The Node extractor (onnxruntime-node, the checkpoint read from its file) with the same blocks, timesteps, seed and
    // images: the mock of @diffssl/core is lifted and the module registry reset, so it loads the Node build afresh.
    vi.doUnmock('@diffssl/core');
    vi.resetModules();
    const node = await import('./index.js');
    const nodeCore = await import('@diffssl/core');
    // The Node build exports saveModel; the browser build, mocked in above, does not.
    expect(typeof (nodeCore as Record<string, unknown>).saveModel).toBe('function');
    expect('saveModel' in core).toBe(false);
    const reference = await node.createFeatureExtractor({
      checkpoint: fixturePath('adm-fm28.pt'),
      config: fixture.config as never,
      ...extraction,
      runner: { executionProviders: ['cpu'] },
    });
    expect(reference.provider).toBe('cpu');
    const want = await reference.extract(xStart);
    const wantWithIds = await reference.extract(xStart, { ids: [11, 12] });
    await reference.release();
    for (const [got, expected, ids] of [
      [features, want, 'pixel-hash ids'],
      [withIds, wantWithIds, 'ids 11, 12'],
    ] as const) {
      expect([...got.keys()].sort(), ids).toEqual([...expected.keys()].sort());
      expect(got.size).toBe(4);
      for (const [key, tensor] of expected) expect(relativeError(got.get(key)!, tensor), `${key}, ${ids}`).toBeLessThanOrEqual(1e-5);
    }
    // The ids key the noise: the two calls differ.
    expect(relativeError(withIds.get(featureKey(150, 9))!, features.get(featureKey(150, 9))!)).toBeGreaterThan(1e-3);
  });
});
