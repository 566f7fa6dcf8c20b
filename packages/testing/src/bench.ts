import { compileModel, createRunner, Graph, HostTensor, matmul } from '@diffssl/core';

/**
 * Mean seconds per call of `run`: one warm-up call, then at least
 * `minimumRuns` calls and at least `minimumSeconds` in all.
 */
export async function secondsPerRun(run: () => Promise<unknown> | unknown, minimumSeconds: number, minimumRuns = 2): Promise<number> {
  await run();
  const start = performance.now();
  let runs = 0;
  while (runs < minimumRuns || performance.now() - start < minimumSeconds * 1000) {
    await run();
    runs++;
  }
  return (performance.now() - start) / 1000 / runs;
}

/** ONNX Runtime's float32 matmul rate (GFLOP/s) at size x size on the CPU provider, the yardstick of the benchmarks. */
export async function matmulRate(size = 512, seconds = 2): Promise<number> {
  const graph = new Graph();
  const a = graph.input('a', 'float32', [size, size]);
  const b = graph.input('b', 'float32', [size, size]);
  const runner = await createRunner(compileModel({ outputs: { c: matmul(a, b) } }), { executionProviders: ['cpu'] });
  const feeds = {
    a: HostTensor.from('float32', [size, size], new Float32Array(size * size).fill(0.5)),
    b: HostTensor.from('float32', [size, size], new Float32Array(size * size).fill(0.25)),
  };
  const time = await secondsPerRun(() => runner.run(feeds), seconds);
  await runner.release();
  return (2 * size ** 3) / time / 1e9;
}

/**
 * Forward FLOPs of pre-norm ViT blocks on tokens [batch, tokens, dim]:
 * qkv, attention scores and mix, projection, and the MLP.
 */
export function vitForwardFlops(batch: number, tokens: number, dim: number, mlpRatio: number, blocks: number): number {
  const perBlock = 2 * batch * tokens * dim * (3 * dim + dim + 2 * Math.trunc(dim * mlpRatio)) + 2 * 2 * batch * tokens * tokens * dim;
  return blocks * perBlock;
}
