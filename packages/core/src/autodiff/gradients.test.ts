/**
 * Recomputation in the backward pass (`OpDefinition.rematerialize` and the
 * attention op's own gradient): the backward graph must not read the forward
 * tensors it recomputes, and ONNX Runtime must not merge the recomputation
 * back into the forward nodes (its common-subexpression elimination would
 * keep the forward tensors alive after all). The values are checked by the op
 * suite (ops.test.ts) against float64 kernels and finite differences.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { onnxType } from '../onnx/onnx-schema.js';
import { compileModel, gelu, gradients, Graph, matmul, saveModel, scaledDotProductAttention, sum, type SymbolicTensor } from '../index.js';

/** Every tensor `tensor` is computed from, itself included. */
function ancestors(tensor: SymbolicTensor): Set<SymbolicTensor> {
  const seen = new Set<SymbolicTensor>();
  const stack = [tensor];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...(next.producer?.inputs ?? []));
  }
  return seen;
}

/** A transformer's large activations: attention, then GELU read by a matmul, reduced to a loss. */
function problem() {
  const graph = new Graph();
  const [q, k, v] = ['q', 'k', 'v'].map((name) => graph.input(name, 'float32', [2, 3, 6, 4]));
  const w = graph.input('w', 'float32', [4, 5]);
  const attended = scaledDotProductAttention(q!, k!, v!, 0.5);
  const activated = gelu(attended);
  const loss = sum(matmul(activated, w));
  return { q: q!, k: k!, v: v!, w, activated, loss, grads: gradients(loss, [q!, k!, v!, w]) };
}

const workDir = mkdtempSync(join(tmpdir(), 'diffssl-remat-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('recomputation in the backward pass', () => {
  it("the weight gradient after a GELU reads a recomputed GELU, not the forward's output", () => {
    const { activated, grads } = problem();
    const read = ancestors(grads[3]!);
    expect(read.has(activated)).toBe(false);
    const recomputed = [...read].filter((t) => t !== activated && t.shape.join() === activated.shape.join() && t.producer?.op.name === 'mul');
    expect(recomputed.length).toBeGreaterThan(0);
  });

  it('ONNX Runtime keeps the recomputed erf and softmax apart from the forward ones (2 of each after its optimizations)', async () => {
    const { loss, grads } = problem();
    const model = compileModel({ outputs: { loss, dq: grads[0]!, dk: grads[1]!, dv: grads[2]!, dw: grads[3]! } });
    const source = join(workDir, 'backward.onnx');
    const optimized = join(workDir, 'backward.optimized.onnx');
    await saveModel(model, source);
    const session = await ort.InferenceSession.create(source, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: optimized,
    });
    await session.release();
    const decoded = onnxType('ModelProto').decode(readFileSync(optimized)) as unknown as { graph: { node: { opType: string }[] } };
    const count = (opType: string) => decoded.graph.node.filter((node) => node.opType === opType).length;
    // Merged, each would be 1: the forward's tensor would then live until the backward pass.
    expect(count('Erf')).toBe(2);
    expect(count('Softmax')).toBe(2);
  });
});
