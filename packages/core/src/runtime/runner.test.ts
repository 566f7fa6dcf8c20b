/**
 * The runner's provider choice, tested on any machine: a fake ORT binding
 * decides which providers load, so the CUDA success path, a load failure with
 * fallback and `strict` are all exercised whether or not CUDA is present.
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
  relu,
  ShapeError,
  UnsupportedError,
} from '../index.js';
import {
  createRunnerWith,
  type ExecutionProvider,
  type OrtBinding,
  type OrtSession,
  type OrtTensor,
  type RuntimeEnvironment,
  type SessionOptions,
} from './runner.js';

function model() {
  const graph = new Graph();
  const x = graph.input('x', 'float32', ['batch', 3]);
  return compileModel({ outputs: { y: relu(x) } });
}

class FakeTensor implements OrtTensor {
  constructor(
    readonly type: string,
    readonly data: ArrayBufferView,
    readonly dims: readonly number[],
  ) {}
}

/**
 * A stand-in for onnxruntime: `outcomes` says, per provider name, whether its
 * session opens (`true`) or which error ORT throws. Its sessions compute
 * `y = 2 * x` and record what they were given.
 */
function fakeOrt(outcomes: Record<string, true | string>) {
  const attempts: SessionOptions[] = [];
  const released: string[] = [];
  const session = (provider: string): OrtSession => ({
    inputNames: ['x'],
    outputNames: ['y'],
    async run(feeds) {
      const x = feeds.x!;
      const y = Float32Array.from(x.data as Float32Array, (value) => 2 * value);
      return { y: new FakeTensor('float32', y, x.dims) };
    },
    async release() {
      released.push(provider);
    },
  });
  const binding: OrtBinding = {
    InferenceSession: {
      async create(_model, options) {
        const sessionOptions = options as SessionOptions;
        attempts.push(sessionOptions);
        const provider = sessionOptions.executionProviders[0];
        const name = typeof provider === 'string' ? provider : provider.name;
        const outcome = outcomes[name] ?? `unknown provider ${name}`;
        if (outcome !== true) throw new Error(outcome);
        return session(name);
      },
    },
    Tensor: FakeTensor,
  };
  const tried = () => attempts.map((options) => options.executionProviders[0]);
  return { binding, attempts, tried, released };
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

describe('createRunner (onnxruntime-node)', () => {
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
