/**
 * The runner's provider choice, tested on any machine: a fake ORT binding
 * decides which providers load and a fake adapter source what WebGPU device
 * there is, so the CUDA success path, `auto`, a load failure with fallback
 * and `strict` are all exercised whether or not a GPU is present.
 * The tests against the real onnxruntime-node accept either outcome of a
 * CUDA request, or use a device that exists nowhere.
 */
import { describe, expect, it } from 'vitest';
import {
  compileModel,
  ConfigError,
  createRunner,
  DTypeError,
  Graph,
  HostTensor,
  ProviderUnavailableError,
  probeWebGpuAdapter,
  relu,
  ShapeError,
  UnsupportedError,
} from '../index.js';
import { fakeOrt } from '@diffssl/testing';
import { nodeAutoCandidates } from './node-probes.js';
import { createRunnerWith, type ExecutionProvider, type RuntimeEnvironment } from './runner.js';
import type { WebGpuAdapterInfo, WebGpuAdapterReport } from './webgpu-adapter.js';

function model() {
  const graph = new Graph();
  const x = graph.input('x', 'float32', ['batch', 3]);
  return compileModel({ outputs: { y: relu(x) } });
}

function environment(probe?: (provider: string) => string | undefined): RuntimeEnvironment {
  return { defaultProviders: ['cuda', 'cpu'], loadModel: async (compiled) => compiled.serialize().model, ...(probe ? { probe } : {}) };
}

const CUDA_MISSING = 'CUDA failure 100: no CUDA-capable device is detected ; GPU=-1 ; hostname=x ; file=cuda_call.cc\nstack trace...';

describe('createRunnerWith (fake ONNX Runtime binding)', () => {
  it('uses CUDA when its session opens: reports cuda, warns nothing, passes the session options', async () => {
    const ort = fakeOrt({ cuda: true, cpu: true });
    const warnings: string[] = [];
    const providers: ExecutionProvider[] = [{ name: 'cuda', deviceId: 1 }, 'cpu'];
    const runner = await createRunnerWith(ort.binding, environment(), model(), {
      executionProviders: providers,
      intraOpThreads: 2,
      cpuMemoryArena: false,
      memoryPattern: false,
      executionMode: 'sequential',
      onWarning: (m) => warnings.push(m),
    });
    expect(runner.provider).toBe('cuda');
    expect(warnings).toEqual([]);
    expect(ort.tried()).toEqual([{ name: 'cuda', deviceId: 1 }]);
    expect(ort.attempts[0]).toMatchObject({
      intraOpNumThreads: 2,
      graphOptimizationLevel: 'all',
      enableCpuMemArena: false,
      enableMemPattern: false,
      executionMode: 'sequential',
    });
    const { y } = await runner.run({ x: HostTensor.from('float32', [2, 3], [1, -2, 3, -4, 5, -6]) });
    expect(y!.shape).toEqual([2, 3]);
    expect(y!.toArray()).toEqual([2, -4, 6, -8, 10, -12]);
    await runner.release();
    await runner.release();
    expect(ort.released).toEqual(['cuda']);
    await expect(runner.run({ x: HostTensor.zeros('float32', [1, 3]) })).rejects.toThrow(ConfigError);
  });

  it('falls back to the next provider with a warning when CUDA fails to load', async () => {
    const ort = fakeOrt({ cuda: CUDA_MISSING, cpu: true });
    const warnings: string[] = [];
    const runner = await createRunnerWith(ort.binding, environment(), model(), { onWarning: (m) => warnings.push(m) });
    expect(runner.provider).toBe('cpu');
    expect(ort.tried()).toEqual(['cuda', 'cpu']);
    expect(warnings).toEqual([
      "@diffssl/core: execution provider 'cuda' is unavailable (cuda: CUDA failure 100: no CUDA-capable device is detected ; GPU=-1 ; hostname=x ; file=cuda_call.cc); using 'cpu'",
    ]);
    const { y } = await runner.run({ x: HostTensor.from('float32', [1, 3], [1, 2, 3]) });
    expect(y!.toArray()).toEqual([2, 4, 6]);
    await runner.release();
  });

  it('skips a provider the probe rules out without asking ONNX Runtime, and names the reason', async () => {
    const ort = fakeOrt({ cuda: true, cpu: true });
    const warnings: string[] = [];
    const probe = (provider: string) => (provider === 'cuda' ? 'libcuda is not installed' : undefined);
    const runner = await createRunnerWith(ort.binding, environment(probe), model(), { onWarning: (m) => warnings.push(m) });
    expect(runner.provider).toBe('cpu');
    expect(ort.tried()).toEqual(['cpu']);
    expect(warnings.join()).toContain('cuda: libcuda is not installed');
    await runner.release();
  });

  it('under strict, fails with ProviderUnavailableError instead of falling back', async () => {
    const ort = fakeOrt({ cuda: CUDA_MISSING, cpu: true });
    const warnings: string[] = [];
    const error = await createRunnerWith(ort.binding, environment(), model(), { strict: true, onWarning: (m) => warnings.push(m) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).code).toBe('ERR_PROVIDER_UNAVAILABLE');
    expect((error as Error).message).toBe(
      "createRunner: execution provider 'cuda' is unavailable and strict is set: CUDA failure 100: no CUDA-capable device is detected ; GPU=-1 ; hostname=x ; file=cuda_call.cc",
    );
    expect(ort.tried()).toEqual(['cuda']);
    expect(warnings).toEqual([]);
    // strict with a first provider that loads is an ordinary runner
    const loads = await createRunnerWith(fakeOrt({ cuda: true }).binding, environment(), model(), { strict: true });
    expect(loads.provider).toBe('cuda');
    await loads.release();
  });

  it('lists every failure when no provider loads, and blames the model when CPU cannot load it', async () => {
    const none = fakeOrt({ cuda: CUDA_MISSING, webgpu: 'no adapter' });
    const noneLoads = await createRunnerWith(none.binding, environment(), model(), { executionProviders: ['cuda', 'webgpu'] }).catch((e: unknown) => e);
    expect(noneLoads).toBeInstanceOf(ProviderUnavailableError);
    expect((noneLoads as Error).message).toBe(
      'createRunner: no execution provider could be loaded; tried cuda: CUDA failure 100: no CUDA-capable device is detected ; GPU=-1 ; hostname=x ; file=cuda_call.cc; webgpu: no adapter',
    );
    const broken = fakeOrt({ cuda: CUDA_MISSING, cpu: 'Load model failed: protobuf parsing failed' });
    const error = await createRunnerWith(broken.binding, environment(), model(), { onWarning: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe("createRunner: ONNX Runtime could not load the model on 'cpu': Load model failed: protobuf parsing failed");
  });

  it("refuses thread: 'worker' (only the Node entry runs models on a worker)", async () => {
    await expect(createRunnerWith(fakeOrt({ cpu: true }).binding, environment(), model(), { thread: 'worker' })).rejects.toThrow(UnsupportedError);
  });
});

const HARDWARE: WebGpuAdapterInfo = { vendor: 'nvidia', architecture: 'ampere', device: 'NVIDIA A100', description: '', software: false, limits: {} };
const LAVAPIPE: WebGpuAdapterInfo = {
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe',
  software: true,
  limits: {},
};

/** The Node environment with `auto`'s candidates fed by fake probes (counting adapter reads). */
function autoEnvironment(cudaLibrary: string | undefined, adapter: WebGpuAdapterReport) {
  const reads = { adapter: 0 };
  const probes = {
    provider: (provider: string) => (provider === 'cuda' ? cudaLibrary : undefined),
    adapter: async () => {
      reads.adapter += 1;
      return adapter;
    },
  };
  const env: RuntimeEnvironment = {
    defaultProviders: ['auto'],
    loadModel: async (compiled) => compiled.serialize().model,
    probe: probes.provider,
    autoCandidates: nodeAutoCandidates(probes),
  };
  return { env, reads };
}

describe("createRunnerWith: 'auto' (fake binding, fake adapter)", () => {
  it.each([
    ['CUDA library and device present', undefined, { found: true, adapter: HARDWARE }, { cuda: true, webgpu: true, cpu: true }, 'cuda', ['cuda'], 0],
    [
      'no CUDA library, hardware adapter',
      'libonnxruntime_providers_cuda.so is not installed',
      { found: true, adapter: HARDWARE },
      { cuda: true, webgpu: true, cpu: true },
      'webgpu',
      ['webgpu'],
      1,
    ],
    [
      'no CUDA library, software adapter (lavapipe)',
      'libonnxruntime_providers_cuda.so is not installed',
      { found: true, adapter: LAVAPIPE },
      { cuda: true, webgpu: true, cpu: true },
      'cpu',
      ['cpu'],
      1,
    ],
    [
      "CUDA library but no device, no 'webgpu' package",
      undefined,
      { found: false, reason: "'webgpu' is not installed" },
      { cuda: CUDA_MISSING, webgpu: true, cpu: true },
      'cpu',
      ['cuda', 'cpu'],
      1,
    ],
    [
      'hardware adapter whose session fails',
      'no library',
      { found: true, adapter: HARDWARE },
      { webgpu: 'device lost', cpu: true },
      'cpu',
      ['webgpu', 'cpu'],
      1,
    ],
  ] as const)('%s: chooses %s silently', async (_label, cudaLibrary, adapter, outcomes, expected, tried, adapterReads) => {
    const ort = fakeOrt(outcomes);
    const { env, reads } = autoEnvironment(cudaLibrary, adapter as WebGpuAdapterReport);
    const warnings: string[] = [];
    const runner = await createRunnerWith(ort.binding, env, model(), { onWarning: (m) => warnings.push(m), strict: true });
    expect(runner.provider).toBe(expected);
    expect(warnings).toEqual([]);
    expect(ort.tried()).toEqual(tried);
    expect(reads.adapter).toBe(adapterReads);
    expect(runner.reason.startsWith(`'${expected}' chosen by auto`)).toBe(true);
    const { y } = await runner.run({ x: HostTensor.from('float32', [1, 3], [1, 2, 3]) });
    expect(y!.toArray()).toEqual([2, 4, 6]);
    await runner.release();
  });

  it('says what auto skipped and why', async () => {
    const { env } = autoEnvironment('libonnxruntime_providers_cuda.so is not installed', { found: true, adapter: LAVAPIPE });
    const runner = await createRunnerWith(fakeOrt({ cpu: true }).binding, env, model());
    expect(runner.reason).toBe(
      "'cpu' chosen by auto (auto skipped cuda: libonnxruntime_providers_cuda.so is not installed; webgpu: the only adapter is llvmpipe-llvm-15-0-6-256-bits- (mesa, software: runs on the CPU), slower than the CPU provider)",
    );
    await runner.release();
  });

  it('a named provider that is unavailable warns once and falls back to auto, which does not retry it; under strict it fails', async () => {
    const { env } = autoEnvironment(undefined, { found: true, adapter: LAVAPIPE });
    const ort = fakeOrt({ cuda: CUDA_MISSING, webgpu: true, cpu: true });
    const warnings: string[] = [];
    const runner = await createRunnerWith(ort.binding, env, model(), { executionProviders: ['cuda', 'auto'], onWarning: (m) => warnings.push(m) });
    expect(runner.provider).toBe('cpu');
    expect(ort.tried()).toEqual(['cuda', 'cpu']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^@diffssl\/core: execution provider 'cuda' is unavailable \(cuda: CUDA failure 100.*\); using 'cpu'$/);
    expect(runner.reason).toMatch(/^'cpu' chosen by auto \(unavailable: cuda: CUDA failure 100.*; auto skipped webgpu: the only adapter is llvmpipe/);
    await runner.release();
    const strict = await createRunnerWith(fakeOrt({ cuda: CUDA_MISSING, cpu: true }).binding, env, model(), {
      executionProviders: ['cuda', 'auto'],
      strict: true,
    }).catch((e: unknown) => e);
    expect(strict).toBeInstanceOf(ProviderUnavailableError);
    expect((strict as Error).message).toMatch(/^createRunner: execution provider 'cuda' is unavailable and strict is set: CUDA failure 100/);
  });

  it('a named provider that loads reports it as named', async () => {
    const { env } = autoEnvironment(undefined, { found: true, adapter: LAVAPIPE });
    const runner = await createRunnerWith(fakeOrt({ webgpu: true }).binding, env, model(), { executionProviders: ['webgpu'], strict: true });
    expect([runner.provider, runner.reason]).toEqual(['webgpu', "'webgpu' as named"]);
    await runner.release();
  });
});

describe('createRunner (onnxruntime-node)', () => {
  it('by default (auto) warns nothing, reports why, and never chooses a software WebGPU adapter', async () => {
    const warnings: string[] = [];
    const runner = await createRunner(model(), { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
    expect(runner.reason).toMatch(new RegExp(`^'${runner.provider}' chosen by auto`));
    const adapter = await probeWebGpuAdapter();
    expect(probeWebGpuAdapter()).toBe(probeWebGpuAdapter()); // read once per process
    if (!adapter.found || adapter.adapter.software) expect(runner.provider).not.toBe('webgpu');
    if (runner.provider === 'cpu') expect(runner.reason).toMatch(/auto skipped cuda: .*; webgpu: /);
    const { y } = await runner.run({ x: HostTensor.from('float32', [1, 3], [-1, 2, -3]) });
    expect(y!.toArray()).toEqual([0, 2, 0]);
    await runner.release();
  });

  it('given CUDA first, either uses CUDA or falls back to CPU with a warning', async () => {
    const warnings: string[] = [];
    const runner = await createRunner(model(), { executionProviders: ['cuda', 'cpu'], onWarning: (m) => warnings.push(m) });
    expect(['cuda', 'cpu']).toContain(runner.provider);
    if (runner.provider === 'cuda') expect(warnings).toEqual([]);
    else expect(warnings.join('\n')).toMatch(/'cuda' is unavailable.*using 'cpu'/s);
    const { y } = await runner.run({ x: HostTensor.from('float32', [2, 3], [-1, 2, -3, 4, -5, 6]) });
    expect(y!.toArray()).toEqual([0, 2, 0, 4, 0, 6]);
    await runner.release();
    await runner.release();
    await expect(runner.run({ x: HostTensor.zeros('float32', [1, 3]) })).rejects.toThrow(/released/);
  });

  it('falls back from a CUDA device that exists on no machine, and fails on it under strict', async () => {
    const warnings: string[] = [];
    const noDevice: ExecutionProvider = { name: 'cuda', deviceId: 4096 };
    const runner = await createRunner(model(), { executionProviders: [noDevice, 'cpu'], onWarning: (m) => warnings.push(m) });
    expect(runner.provider).toBe('cpu');
    expect(warnings.join('\n')).toMatch(/'cuda' is unavailable.*using 'cpu'/s);
    await runner.release();
    await expect(createRunner(model(), { executionProviders: [noDevice, 'cpu'], strict: true })).rejects.toThrow(ProviderUnavailableError);
  });

  it('validates feeds: missing, unknown, wrong dtype, wrong static size', async () => {
    const runner = await createRunner(model(), { executionProviders: ['cpu'] });
    await expect(runner.run({})).rejects.toThrow(ConfigError);
    await expect(runner.run({ x: HostTensor.zeros('float32', [1, 3]), z: HostTensor.zeros('float32', [1]) })).rejects.toThrow(/unknown input 'z'/);
    await expect(runner.run({ x: HostTensor.zeros('float64', [1, 3]) })).rejects.toThrow(DTypeError);
    await expect(runner.run({ x: HostTensor.zeros('float32', [1, 4]) })).rejects.toThrow(ShapeError);
    await runner.release();
  });

  it('rejects an empty provider list and a model ONNX Runtime cannot load', async () => {
    await expect(createRunner(model(), { executionProviders: [] })).rejects.toThrow(/at least one execution provider/);
    await expect(createRunner(new Uint8Array([1, 2, 3]), { executionProviders: ['cpu'] })).rejects.toThrow(/could not load the model on 'cpu'/);
  });
});
