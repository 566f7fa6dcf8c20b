/**
 * `createRunner(model, { thread: 'worker' })`: the same runner with its ONNX
 * Runtime session on a worker thread. Checked against the in-thread runner
 * (outputs, errors) and against hand-computed values.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  cast,
  compileModel,
  compileTrainStep,
  ConfigError,
  createRunner,
  crossEntropy,
  DTypeError,
  Graph,
  greater,
  HostTensor,
  linear,
  matmul,
  ProviderUnavailableError,
  relu,
  sgd,
  ShapeError,
  tanh,
  type ExecutionProvider,
  type Runner,
  type RunnerOptions,
} from '../index.js';
import { randomTensor } from '@diffssl/testing';

const CPU: RunnerOptions = { executionProviders: ['cpu'] };
const WORKER: RunnerOptions = { ...CPU, thread: 'worker' };

/** y = relu(x), positive = x > 0, half = x as float16, for x [batch, 3]. */
function smallModel() {
  const graph = new Graph();
  const x = graph.input('x', 'float32', ['batch', 3]);
  return compileModel({ outputs: { y: relu(x), positive: greater(x, 0), half: cast(x, 'float16') } });
}

const opened: Runner[] = [];
async function open(model: Parameters<typeof createRunner>[0], options: RunnerOptions): Promise<Runner> {
  const runner = await createRunner(model, options);
  opened.push(runner);
  return runner;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((runner) => runner.release()));
  vi.restoreAllMocks();
});

describe("createRunner with thread: 'worker'", () => {
  it('computes what the in-thread runner computes, for every output dtype, and leaves the inputs intact', async () => {
    const model = smallModel();
    const worker = await open(model, WORKER);
    const inThread = await open(model, CPU);
    expect(worker.provider).toBe('cpu');
    expect([...worker.inputNames]).toEqual(['x']);
    expect([...worker.outputNames].sort()).toEqual(['half', 'positive', 'y']);
    // x is a view into a larger buffer: only its own elements must reach the worker.
    const backing = HostTensor.from('float32', [3, 3], [9, 9, 9, -1.5, 2, 0, 3, -4, 65504]);
    const x = backing.slice([1, 0], [3, 3]);
    const out = await worker.run({ x });
    expect(out.y!.shape).toEqual([2, 3]);
    expect(out.y!.toArray()).toEqual([0, 2, 0, 3, 0, 65504]);
    expect(out.positive!.dtype).toBe('bool');
    expect(out.positive!.toArray()).toEqual([0, 1, 0, 1, 0, 1]);
    expect(out.half!.dtype).toBe('float16');
    // float16 bits of -1.5, 2, 0, 3, -4, 65504
    expect(Array.from(out.half!.data as Uint16Array)).toEqual([0xbe00, 0x4000, 0x0000, 0x4200, 0xc400, 0x7bff]);
    const expected = await inThread.run({ x });
    for (const name of ['y', 'positive', 'half']) expect(out[name]!.toArray(), name).toEqual(expected[name]!.toArray());
    expect(x.toArray()).toEqual([-1.5, 2, 0, 3, -4, 65504]);
    expect(backing.toArray()).toEqual([9, 9, 9, -1.5, 2, 0, 3, -4, 65504]);
  });

  it('moves input buffers instead of copying them with transferInputs', async () => {
    const worker = await open(smallModel(), { ...WORKER, transferInputs: true });
    const x = HostTensor.from('float32', [1, 3], [-1, 0.5, 7]);
    const { y } = await worker.run({ x });
    expect(y!.toArray()).toEqual([0, 0.5, 7]);
    expect(x.data.byteLength).toBe(0); // detached: the buffer moved to the worker
  });

  it('keeps the event loop running during a long run, with the same result as the in-thread runner', async () => {
    // 250 steps of tanh(y W) on [256, 512] x [512, 512]: 34 GFLOP, 0.3 s or more on one CPU thread.
    const graph = new Graph();
    const x = graph.input('x', 'float32', [256, 512]);
    const w = graph.weight('w', randomTensor([512, 512], 3, -0.08, 0.08));
    let y = x;
    for (let i = 0; i < 250; i++) y = tanh(matmul(y, w));
    const model = compileModel({ outputs: { y } });
    const feeds = { x: randomTensor([256, 512], 4) };
    const oneThread: RunnerOptions = { ...CPU, intraOpThreads: 1 };
    const worker = await open(model, { ...oneThread, thread: 'worker' });
    let ticks = 0;
    const interval = setInterval(() => ticks++, 10);
    const start = performance.now();
    let result: Record<string, HostTensor>;
    try {
      result = await worker.run(feeds);
    } finally {
      clearInterval(interval);
    }
    const elapsed = performance.now() - start;
    // A blocked event loop gives no tick at all until the run ends; a free one ticks about every 10 ms.
    expect(ticks, `${ticks} ticks in ${elapsed.toFixed(0)} ms`).toBeGreaterThanOrEqual(Math.max(1, Math.floor(elapsed / 40)));
    const inThread = await open(model, oneThread);
    const expected = await inThread.run(feeds);
    const got = result.y!.toArray();
    const want = expected.y!.toArray();
    expect(got.length).toBe(256 * 512);
    let worst = 0;
    got.forEach((value, i) => (worst = Math.max(worst, Math.abs(value - want[i]!))));
    expect(worst).toBeLessThanOrEqual(1e-6);
  });

  it('raises the same error classes and messages as the in-thread runner', async () => {
    const worker = await open(smallModel(), WORKER);
    await expect(worker.run({})).rejects.toThrow(ConfigError);
    await expect(worker.run({ x: HostTensor.zeros('float64', [1, 3]) })).rejects.toThrow(DTypeError);
    await expect(worker.run({ x: HostTensor.zeros('float32', [1, 4]) })).rejects.toThrow(ShapeError);

    // Errors ONNX Runtime raises inside the worker: bytes are not validated before the run.
    const bytes = smallModel().serialize().model;
    const badFeed = { x: HostTensor.zeros('float32', [1, 4]) };
    const fromWorker = await (await open(bytes, WORKER)).run(badFeed).catch((e: unknown) => e as Error);
    const fromThread = await (await open(bytes, CPU)).run(badFeed).catch((e: unknown) => e as Error);
    expect(fromWorker).toBeInstanceOf(Error);
    expect(fromWorker.message).toMatch(/invalid dimensions for input: x/);
    expect({ name: fromWorker.name, message: fromWorker.message }).toEqual({ name: fromThread.name, message: fromThread.message });

    const unloadable = (await createRunner(new Uint8Array([1, 2, 3]), WORKER).catch((e: unknown) => e)) as Error;
    expect(unloadable).toBeInstanceOf(ConfigError);
    expect(unloadable.message).toMatch(/could not load the model on 'cpu'/);

    const noDevice: ExecutionProvider = { name: 'cuda', deviceId: 4096 };
    await expect(createRunner(smallModel(), { thread: 'worker', executionProviders: [noDevice, 'cpu'], strict: true })).rejects.toThrow(
      ProviderUnavailableError,
    );
    const warnings: string[] = [];
    const fallback = await open(smallModel(), { thread: 'worker', executionProviders: [noDevice, 'cpu'], onWarning: (m) => warnings.push(m) });
    expect(fallback.provider).toBe('cpu');
    expect(warnings.join()).toMatch(/'cuda' is unavailable.*using 'cpu'/);
  });

  it('terminates its worker on release; later runs fail with ConfigError', async () => {
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    const worker = await createRunner(smallModel(), WORKER);
    await worker.run({ x: HostTensor.zeros('float32', [1, 3]) });
    expect(terminate).not.toHaveBeenCalled();
    await worker.release();
    expect(terminate).toHaveBeenCalledTimes(1);
    await worker.release();
    expect(terminate).toHaveBeenCalledTimes(1);
    await expect(worker.run({ x: HostTensor.zeros('float32', [1, 3]) })).rejects.toThrow(ConfigError);
    // A runner that never opened (strict failure) does not leave its worker behind either.
    await createRunner(smallModel(), { thread: 'worker', executionProviders: [{ name: 'cuda', deviceId: 4096 }], strict: true }).catch(() => undefined);
    expect(terminate).toHaveBeenCalledTimes(2);
  });

  it('does not keep the process alive when idle, even if never released (from an ES module script, whose flags the worker inherits)', () => {
    const index = fileURLToPath(new URL('../index.ts', import.meta.url));
    const script = `
      const { compileModel, createRunner, Graph, HostTensor, relu } = await import(${JSON.stringify(index)});
      const graph = new Graph();
      const x = graph.input('x', 'float32', [2]);
      const runner = await createRunner(compileModel({ outputs: { y: relu(x) } }), { executionProviders: ['cpu'], thread: 'worker' });
      const { y } = await runner.run({ x: HostTensor.from('float32', [2], [-1, 3]) });
      console.log(JSON.stringify(y.toArray()));`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.error, child.stderr).toBeUndefined();
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout.trim()).toBe('[0,3]');
  });

  it('drives a TrainStep: the same parameters after two steps as on the main thread', async () => {
    const build = (thread: 'main' | 'worker') => {
      const graph = new Graph();
      const x = graph.input('x', 'float32', [6, 4]);
      const labels = graph.input('labels', 'int64', [6]);
      const weight = graph.weight('weight', randomTensor([3, 4], 1));
      const bias = graph.weight('bias', randomTensor([3], 2));
      return compileTrainStep({
        loss: crossEntropy(linear(x, weight, bias), labels),
        parameters: [weight, bias],
        optimizer: sgd({ momentum: 0.9 }),
        runner: { ...CPU, thread },
      });
    };
    const [onWorker, onMain] = await Promise.all([build('worker'), build('main')]);
    const batch = { x: randomTensor([6, 4], 5, -2, 2), labels: HostTensor.from('int64', [6], [0n, 1n, 2n, 0n, 1n, 2n]) };
    for (let step = 0; step < 2; step++) {
      const [a, b] = [await onWorker.run(batch, { learningRate: 0.1 }), await onMain.run(batch, { learningRate: 0.1 })];
      expect(a.losses).toEqual(b.losses);
    }
    expect(onWorker.stepCount).toBe(2);
    for (const [name, value] of Object.entries(onMain.parameters())) expect(onWorker.parameters()[name]!.toArray(), name).toEqual(value.toArray());
    await Promise.all([onWorker.release(), onMain.release()]);
  });
});
