import { compileModel, createRunner, Graph, type HostTensor, matmul, transpose, type Runner, type RunnerOptions } from '@diffssl/core';

/**
 * Where the probes' matrix products run: `onnx` (ONNX Runtime's MatMul, the
 * default: 20-100x faster than plain loops here) or `typescript` (plain loops:
 * no session, fine for small sizes and the reference in tests).
 *
 * @public
 */
export type ProbeBackend = 'onnx' | 'typescript';

/** Options shared by the probes' matrix products. @public */
export interface ProbeComputeOptions {
  /** Default `onnx`. */
  backend?: ProbeBackend;
  /** Session options for the `onnx` backend (default: the CPU provider). */
  runner?: RunnerOptions;
}

/** A lazily compiled ONNX model of fixed outputs, run many times. */
export class LazyModel {
  private runner: Promise<Runner> | undefined;

  constructor(
    private readonly build: () => ReturnType<typeof compileModel>,
    private readonly options: RunnerOptions | undefined,
  ) {}

  async run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    this.runner ??= createRunner(this.build(), this.options ?? { executionProviders: ['cpu'] });
    return (await this.runner).run(feeds);
  }

  async release(): Promise<void> {
    const runner = this.runner;
    this.runner = undefined;
    if (runner) await (await runner).release();
  }
}

/** The model computing xᵀx and xᵀy in float64 for row chunks x [rows, D], y [rows, K]. */
export function gramModel(columns: number, targets: number, options: RunnerOptions | undefined): LazyModel {
  return new LazyModel(() => {
    const graph = new Graph();
    const x = graph.input('x', 'float64', ['rows', columns]);
    const y = graph.input('y', 'float64', ['rows', targets]);
    const xt = transpose(x, [1, 0]);
    return compileModel({ outputs: { gram: matmul(xt, x), cross: matmul(xt, y) }, name: 'diffssl_ridge_gram' });
  }, options);
}

/** The model computing q · tᵀ in float32 for q [rows, D] and tᵀ [D, M]. */
export function similarityModel(columns: number, options: RunnerOptions | undefined): LazyModel {
  return new LazyModel(() => {
    const graph = new Graph();
    const q = graph.input('q', 'float32', ['rows', columns]);
    const t = graph.input('t', 'float32', [columns, 'count']);
    return compileModel({ outputs: { similarity: matmul(q, t) }, name: 'diffssl_knn_similarity' });
  }, options);
}
