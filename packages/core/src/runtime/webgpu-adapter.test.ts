/**
 * Reading a WebGPU adapter's info: which adapters count as software (CPU)
 * devices that `auto` never chooses.
 */
import { describe, expect, it } from 'vitest';
import { adapterSummary, autoWebGpuRefusal, describeAdapter } from './webgpu-adapter.js';

describe('describeAdapter', () => {
  it.each([
    [
      'lavapipe as Dawn reports it',
      { info: { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', isFallbackAdapter: true } },
      true,
    ],
    [
      'a fallback adapter (older implementations: flag on the adapter)',
      { info: { vendor: 'google', device: 'SwiftShader Device' }, isFallbackAdapter: true },
      true,
    ],
    ['SwiftShader without the flag', { info: { vendor: 'google', architecture: '', device: '', description: 'SwiftShader Device (Subzero)' } }, true],
    ['architecture software alone', { info: { vendor: 'x', architecture: 'software', device: 'y' } }, true],
    ['an NVIDIA GPU', { info: { vendor: 'nvidia', architecture: 'ampere', device: 'NVIDIA A100-SXM4-80GB', isFallbackAdapter: false } }, false],
    ['an adapter that reports nothing', {}, false],
  ])('%s: software %s', (_label, adapter, software) => {
    expect(describeAdapter(adapter).software).toBe(software);
  });

  it('keeps the reported limits, names it, and says why auto refuses a software adapter', () => {
    const info = describeAdapter({
      info: { vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: 'llvmpipe: Mesa 25' },
      limits: { maxBufferSize: 4294967295, maxStorageBufferBindingSize: 134217728, notALimit: 'x', maxTextureDimension1D: 8192 },
    });
    expect(info.limits).toEqual({ maxBufferSize: 4294967295, maxStorageBufferBindingSize: 134217728 });
    expect(adapterSummary(info)).toBe('llvmpipe (mesa, software: runs on the CPU)');
    expect(autoWebGpuRefusal({ found: true, adapter: info })).toBe(
      'the only adapter is llvmpipe (mesa, software: runs on the CPU), slower than the CPU provider',
    );
    const gpu = describeAdapter({ info: { vendor: 'nvidia', architecture: 'ampere', device: 'A100' } });
    expect(adapterSummary(gpu)).toBe('A100 (nvidia, ampere, hardware)');
    expect(autoWebGpuRefusal({ found: true, adapter: gpu })).toBeUndefined();
    expect(autoWebGpuRefusal({ found: false, reason: 'no adapter' })).toBe('no adapter');
  });
});
