import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { add, compileModel, conv2d, createRunner, Graph, HostTensor, matmul, relu, saveModel, ShapeError, sum } from '../index.js';
import { randomTensor } from '@diffssl/testing';

describe('compileModel', () => {
  it('writes large initializers as ONNX external data that ONNX Runtime loads', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', ['batch', 64]);
    const weight = graph.weight('weight', randomTensor([64, 64], 1));
    const model = compileModel({ outputs: { y: relu(matmul(x, weight)) } });
    const directory = mkdtempSync(join(tmpdir(), 'diffssl-test-'));
    const path = join(directory, 'model.onnx');
    await saveModel(model, path, { externalDataThreshold: 1024 });
    expect(statSync(`${path}.data`).size).toBeGreaterThanOrEqual(64 * 64 * 4);
    expect(readFileSync(path).byteLength).toBeLessThan(4096);
    const feeds = { x: randomTensor([2, 64], 2) };
    const fromFile = await createRunner(path, { executionProviders: ['cpu'] });
    const inline = await createRunner(model, { executionProviders: ['cpu'] });
    const [a, b] = [await fromFile.run(feeds), await inline.run(feeds)];
    expect(a.y!.toArray()).toEqual(b.y!.toArray());
    await fromFile.release();
    await inline.release();
  });

  it('lowers only what the outputs need (early exit)', () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 2, 4, 4]);
    const first = conv2d(x, graph.weight('w1', randomTensor([2, 2, 3, 3], 1)), undefined, { padding: 1 });
    const second = conv2d(first, graph.weight('w2', randomTensor([2, 2, 3, 3], 2)), undefined, { padding: 1 });
    const early = compileModel({ outputs: { first } });
    const full = compileModel({ outputs: { second } });
    expect([...early.initializers.keys()]).toEqual(['w1']);
    expect([...full.initializers.keys()].sort()).toEqual(['w1', 'w2']);
  });

  it('reports shape errors at build time naming the op, the argument and both shapes', () => {
    const graph = new Graph();
    const a = graph.input('a', 'float32', [2, 3]);
    const b = graph.input('b', 'float32', [4, 5]);
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow(/matmul: inner dimensions differ: a \[2, 3\] has 3 columns, b \[4, 5\] has 4 rows/);
    expect(() => add(a, b)).toThrow(/add: shapes \[2, 3\] and \[4, 5\] do not broadcast/);
    const image = graph.input('image', 'float32', [1, 3, 8, 8]);
    expect(() => conv2d(image, graph.weight('w', HostTensor.zeros('float32', [4, 2, 3, 3])))).toThrow(
      /conv2d: weight \[4, 2, 3, 3\] with groups 1 expects 2 input channels; x \[1, 3, 8, 8\] has 3/,
    );
    expect(() => sum(a, 5)).toThrow(/sum: axis 5 is out of range for a tensor of rank 2/);
    expect(() => compileModel({ outputs: {} })).toThrow(/at least one output/);
    const other = new Graph().input('c', 'float32', [2, 3]);
    expect(() => add(a, other)).toThrow(/belongs to another graph/);
  });
});
