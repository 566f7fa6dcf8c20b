/**
 * Run as its own process by {@link webGpuUnavailable}: opens a one-node
 * graph on onnxruntime-node's WebGPU provider (strict, no fallback), runs it,
 * checks the result and that the node ran on WebGPU, and prints one JSON line
 * `{ "ok": true }` or `{ "ok": false, "reason": "..." }`. A separate process,
 * because a missing or broken Vulkan driver may take the process down with it.
 */
import { compileModel, createRunner, Graph, HostTensor, relu } from '@diffssl/core';

async function probe(): Promise<{ ok: boolean; reason?: string }> {
  const graph = new Graph();
  const x = graph.input('x', 'float32', [4]);
  const runner = await createRunner(compileModel({ outputs: { y: relu(x) } }), { executionProviders: ['webgpu'], strict: true, recordPlacement: true });
  try {
    const { y } = await runner.run({ x: HostTensor.from('float32', [4], [-1, 2, -3, 4]) });
    const values = y!.toArray().join(',');
    if (values !== '0,2,0,4') return { ok: false, reason: `the WebGPU provider computed relu([-1, 2, -3, 4]) as [${values}]; expected [0, 2, 0, 4]` };
    const placement = await runner.placement();
    if (placement.share !== 1) return { ok: false, reason: `a one-node graph ran ${(100 * placement.share).toFixed(1)}% on WebGPU; expected 100%` };
    return { ok: true };
  } finally {
    await runner.release();
  }
}

probe().then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (error: unknown) => {
    // ORT's message starts with its source file and the failed check; keep what it says after them.
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
    const reason = message.replace(/\/onnxruntime_src\/\S+ .*? was false\. /, '');
    process.stdout.write(`${JSON.stringify({ ok: false, reason })}\n`);
  },
);
