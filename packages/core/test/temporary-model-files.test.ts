/**
 * Models above the inline limit are written with external data to a temporary
 * folder before ONNX Runtime loads them: `release()` removes it, and so does
 * the end of the process when the runner is never released.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { compileModel, Graph, HostTensor, matmul } from '../src/index.js';
import { createNodeRunner } from '../src/runtime/node.js';

const previous = process.env.TMPDIR;
/** Our folders only: other tools (tsx, ONNX Runtime) leave their own files in TMPDIR. */
const ours = (folder: string) => readdirSync(folder).filter((name) => name.startsWith('diffssl-'));
afterEach(() => {
  if (previous === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previous;
});

function model() {
  const graph = new Graph();
  const x = graph.input('x', 'float32', [1, 4]);
  // 4 KB of weights, above the 1 KB external-data threshold: y[j] = x[j % 4].
  const w = graph.weight(
    'w',
    HostTensor.from(
      'float32',
      [4, 256],
      Array.from({ length: 1024 }, (_, k) => (Math.floor(k / 256) === (k % 256) % 4 ? 1 : 0)),
    ),
  );
  return compileModel({ outputs: { y: matmul(x, w) } });
}

describe('temporary model files of createRunner (Node)', () => {
  it('writes a model above the inline limit to a temporary folder and removes it on release', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'diffssl-tmp-'));
    process.env.TMPDIR = folder;
    const runner = await createNodeRunner(model(), { executionProviders: ['cpu'] }, 0);
    const [created] = ours(folder);
    expect(created).toMatch(/^diffssl-model-/);
    expect(readdirSync(join(folder, created!)).sort()).toEqual(['model.onnx', 'model.onnx.data']);
    const { y } = await runner.run({ x: HostTensor.from('float32', [1, 4], [1, 2, 3, 4]) });
    expect(y!.toArray().slice(0, 6)).toEqual([1, 2, 3, 4, 1, 2]);
    await runner.release();
    expect(ours(folder)).toEqual([]);
  });

  it('removes the folder at process exit when the runner is never released', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'diffssl-tmp-'));
    const script = fileURLToPath(new URL('./fixtures/unreleased-runner.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, TMPDIR: folder }, timeout: 60_000 });
    expect(stdout).toMatch(/^created diffssl-model-\w+\n$/);
    expect(ours(folder)).toEqual([]);
  });
});
