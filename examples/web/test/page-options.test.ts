import { readFile } from 'node:fs/promises';
import { HostTensor } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { CROSS_ORIGIN_ISOLATION_HEADERS } from '../scripts/headers.js';
import { executionProviders, MAX_WASM_THREADS, wasmThreads } from '../src/ort-setup.js';
import { pageOptions } from '../src/page-options.js';
import { tabSubset, type TabData } from '../src/tab-training.js';

describe('pageOptions', () => {
  it('reads the provider, the thread count and the tab sizes, each optional', () => {
    expect(pageOptions('')).toEqual({});
    expect(pageOptions('?provider=wasm&threads=3')).toEqual({ provider: 'wasm', threads: 3 });
    expect(pageOptions('?provider=webgpu&tabTrain=96&tabTest=64')).toEqual({ provider: 'webgpu', tabTrain: 96, tabTest: 64 });
  });

  it('refuses another provider and counts that are not positive integers', () => {
    expect(() => pageOptions('?provider=webgl')).toThrow("?provider=: expected 'webgpu' or 'wasm'; found 'webgl'");
    for (const bad of ['0', '-2', '1.5', 'two', '', '07'])
      expect(() => pageOptions(`?threads=${bad}`)).toThrow(`?threads=: expected a positive integer; found '${bad}'`);
    expect(() => pageOptions('?tabTest=0')).toThrow('?tabTest=: expected a positive integer');
  });
});

describe('wasmThreads', () => {
  it('is 1 on a page that is not cross-origin isolated, whatever is asked', () => {
    expect(wasmThreads(false, 16)).toBe(1);
    expect(wasmThreads(false, 16, 8)).toBe(1);
  });

  it('is one per core up to the cap on an isolated page, or the count asked for', () => {
    expect(MAX_WASM_THREADS).toBe(4);
    expect([1, 2, 3, 4, 5, 64].map((cores) => wasmThreads(true, cores))).toEqual([1, 2, 3, 4, 4, 4]);
    expect(wasmThreads(true, 0)).toBe(1);
    expect(wasmThreads(true, undefined)).toBe(1);
    expect(wasmThreads(true, 2, 6)).toBe(6);
    expect(() => wasmThreads(true, 2, 0)).toThrow(RangeError);
  });
});

describe('executionProviders', () => {
  it('puts WASM behind WebGPU, and uses WASM alone otherwise', () => {
    expect(executionProviders('webgpu')).toEqual(['webgpu', 'wasm']);
    expect(executionProviders('wasm')).toEqual(['wasm']);
  });
});

describe('tabSubset', () => {
  // Five training images then three held out, each image filled with its own index.
  const data: TabData = {
    images: HostTensor.from(
      'uint8',
      [8, 1, 2, 2],
      Array.from({ length: 32 }, (_, i) => Math.floor(i / 4)),
    ),
    labels: [10, 11, 12, 13, 14, 15, 16, 17],
    trainCount: 5,
    testCount: 3,
  };

  it('takes the first training images and the first held-out ones, pixels and labels together', () => {
    const subset = tabSubset(data, 2, 2);
    expect(subset.images.shape).toEqual([4, 1, 2, 2]);
    expect(Array.from(subset.images.data)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 5, 5, 5, 5, 6, 6, 6, 6]);
    expect(subset.labels).toEqual([10, 11, 15, 16]);
    expect([subset.trainCount, subset.testCount]).toEqual([2, 2]);
    expect(tabSubset(data, 5, 3)).toBe(data);
  });

  it('refuses counts beyond the data or below one', () => {
    expect(() => tabSubset(data, 6, 1)).toThrow('tab subset: expected 1 to 5 training and 1 to 3 held-out images; found 6 and 1');
    expect(() => tabSubset(data, 1, 0)).toThrow('found 1 and 0');
    expect(() => tabSubset(data, 1.5, 1)).toThrow('found 1.5 and 1');
  });
});

describe('cross-origin isolation headers', () => {
  it('are COOP same-origin and COEP require-corp, and public/_headers (static hosts) sets exactly those for every path', async () => {
    expect(CROSS_ORIGIN_ISOLATION_HEADERS).toEqual({ 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    const lines = (await readFile(new URL('../public/_headers', import.meta.url), 'utf8'))
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(lines[0]).toBe('/*');
    const headers = Object.fromEntries(lines.slice(1).map((line) => line.trim().split(/:\s*/, 2) as [string, string]));
    expect(headers).toEqual(CROSS_ORIGIN_ISOLATION_HEADERS);
  });
});
