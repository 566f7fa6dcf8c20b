/**
 * The browser entry's runner, exercised in Node through onnxruntime-web's
 * WASM backend (WebGPU is absent here, so the fallback is exercised too).
 */
import { describe, expect, it } from 'vitest';
import { compileModel, conv2d, evaluateReference, Graph, ProviderUnavailableError, relu } from '../common.js';
import { browserAutoCandidates, createRunner, probeBrowserAdapter } from './browser.js';
import { expectClose, randomTensor } from '@diffssl/testing';

describe('browser runner (onnxruntime-web)', () => {
  it('falls back from WebGPU to WASM with a warning and computes what the reference kernels compute', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', ['batch', 2, 5, 5]);
    const y = relu(conv2d(x, graph.weight('w', randomTensor([3, 2, 3, 3], 1)), undefined, { padding: 1 }));
    const warnings: string[] = [];
    const runner = await createRunner(compileModel({ outputs: { y } }), { executionProviders: ['webgpu', 'wasm'], onWarning: (m) => warnings.push(m) });
    expect(runner.provider).toBe('wasm');
    expect(warnings.join()).toMatch(/'webgpu' is unavailable/);
    const feeds = { x: randomTensor([2, 2, 5, 5], 2) };
    const out = await runner.run(feeds);
    expectClose(out.y!, evaluateReference([y], feeds)[0]!, 2e-5);
    await runner.release();
  });

  it('fails under strict when WebGPU is missing', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1]);
    await expect(createRunner(compileModel({ outputs: { y: relu(x) } }), { executionProviders: ['webgpu', 'wasm'], strict: true })).rejects.toThrow(
      ProviderUnavailableError,
    );
  });

  it('by default (auto) uses WASM silently where navigator.gpu is absent', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [2]);
    const warnings: string[] = [];
    const runner = await createRunner(compileModel({ outputs: { y: relu(x) } }), { onWarning: (m) => warnings.push(m) });
    expect([runner.provider, warnings]).toEqual(['wasm', []]);
    expect(runner.reason).toBe("'wasm' chosen by auto (auto skipped webgpu: this browser has no navigator.gpu (WebGPU is off or unsupported))");
    await runner.release();
  });

  it('auto takes WebGPU on a hardware adapter only', async () => {
    const gpu = (info: object | null) => ({ requestAdapter: async () => (info ? { info } : null) });
    const check = async (info: object | null) => browserAutoCandidates(() => probeBrowserAdapter(gpu(info)))[0]!.check!();
    expect(await check({ vendor: 'nvidia', architecture: 'ampere', device: 'RTX' })).toBeUndefined();
    expect(await check({ vendor: 'google', device: 'SwiftShader Device', isFallbackAdapter: true })).toMatch(/software: runs on the CPU/);
    expect(await check(null)).toBe('navigator.gpu.requestAdapter() found no adapter');
  });
});
