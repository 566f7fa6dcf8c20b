import { ConfigError, DTypeError, ProviderUnavailableError, UnsupportedError } from '../errors.js';
import { OnnxModel, validateFeeds, type ValueDescription } from '../onnx/model.js';
import { assertDataType, type DataType, type DataTypeMap } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';

/**
 * An execution provider to try, by name or with options. In Node: `cuda`
 * (optionally with a device id), `webgpu`, `cpu`; in browsers: `webgpu`, `wasm`.
 *
 * @public
 */
export type ExecutionProvider =
  | 'cuda'
  | 'webgpu'
  | 'cpu'
  | 'wasm'
  | {
      /** The CUDA provider. */
      name: 'cuda';
      /** The GPU to use (default 0). */
      deviceId?: number;
    }
  | {
      /** The WebGPU provider. */
      name: 'webgpu';
    };

/** Options of `createRunner`. @public */
export interface RunnerOptions {
  /** Providers in order of preference; the first that loads is used. */
  executionProviders?: readonly ExecutionProvider[];
  /** Fail with {@link ProviderUnavailableError} instead of falling back when the first provider fails. */
  strict?: boolean;
  /** Threads inside one op (ORT default when omitted). */
  intraOpThreads?: number;
  /** Threads across ops. */
  interOpThreads?: number;
  /** ORT graph optimization level (default `'all'`). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * ORT's CPU memory arena (`enableCpuMemArena`, ORT default true): freed
   * blocks stay in the process for reuse instead of going back to the system.
   */
  cpuMemoryArena?: boolean;
  /**
   * ORT's memory pattern (`enableMemPattern`, ORT default true): after a run
   * with given input shapes, ORT plans one allocation for all intermediate
   * tensors of later runs with those shapes.
   */
  memoryPattern?: boolean;
  /** ORT's execution mode (`executionMode`, ORT default `'sequential'`): `'parallel'` runs independent branches on the inter-op threads. */
  executionMode?: 'sequential' | 'parallel';
  /** Receives fallback warnings; defaults to `console.warn`, once per distinct message in a process. */
  onWarning?: (message: string) => void;
  /** Check inputs (dtype, shape) before each run (default true). */
  validateInputs?: boolean;
  /**
   * Where ONNX Runtime runs (Node only; default `'main'`). onnxruntime-node
   * blocks the calling thread while it creates a session and during each
   * run; with `'worker'` both happen on a dedicated `worker_threads` worker,
   * so timers, I/O and servers stay responsive. Inputs are copied to the
   * worker once (see `transferInputs`); outputs come back without a copy.
   * `release()` terminates the worker.
   */
  thread?: 'main' | 'worker';
  /**
   * With `thread: 'worker'`: move each input's buffer to the worker instead of
   * copying it, when the tensor covers its whole `ArrayBuffer`. The caller's
   * input tensors are unusable afterwards (their buffers are detached), so
   * only set this for inputs made for one run. Default false.
   */
  transferInputs?: boolean;
}

/** The part of an onnxruntime module (node or web) the runner uses. */
export interface OrtBinding {
  InferenceSession: { create(model: Uint8Array | string, options?: object): Promise<OrtSession> };
  Tensor: OrtTensorConstructor;
}

/** Makes an ORT tensor (or a stand-in with the same fields) from typed data. */
export type OrtTensorConstructor = new (type: string, data: ArrayBufferView, dims: readonly number[]) => OrtTensor;

/** The part of an ORT session the runner uses. */
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** The part of an ORT tensor the runner uses. */
export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  dispose?(): void;
}

/** How a model is given to the runner: compiled, as bytes, or as a file path. @public */
export type ModelSource = OnnxModel | Uint8Array | string;

/** Prepares model bytes or a path for ORT (hook for large models in Node). */
export type ModelLoader = (model: OnnxModel) => Promise<Uint8Array | string>;

/**
 * Says why a provider cannot work before ONNX Runtime is asked (for example a
 * provider library that is not installed), or undefined to just try it.
 */
export type ProviderProbe = (provider: string) => string | undefined;

/** What an entry point (Node or browser) supplies to open runners. */
export interface RuntimeEnvironment {
  /** Providers tried when the options name none. */
  readonly defaultProviders: readonly ExecutionProvider[];
  /** Turns a compiled model into what ORT loads. */
  readonly loadModel: ModelLoader;
  /** Rules out providers before ORT is asked (default: try every provider). */
  readonly probe?: ProviderProbe;
}

/** Options of ORT's `InferenceSession.create` that the runner sets, with the one provider to try. */
export interface SessionOptions {
  readonly graphOptimizationLevel: NonNullable<RunnerOptions['graphOptimizationLevel']>;
  readonly intraOpNumThreads?: number;
  readonly interOpNumThreads?: number;
  readonly enableCpuMemArena?: boolean;
  readonly enableMemPattern?: boolean;
  readonly executionMode?: 'sequential' | 'parallel';
  readonly logSeverityLevel: number;
  readonly executionProviders: readonly [ExecutionProvider];
}

/** Opens an ORT session (in this thread or another) with the given options. */
export type SessionOpener = (options: SessionOptions) => Promise<OrtSession>;

/** Runner options resolved against an entry point's environment. */
export interface RunnerPlan {
  readonly providers: readonly ExecutionProvider[];
  readonly strict: boolean;
  readonly sessionOptions: Omit<SessionOptions, 'executionProviders'>;
  readonly probe: ProviderProbe;
  readonly warn: (message: string) => void;
  readonly validate: boolean;
}

function providerName(provider: ExecutionProvider): string {
  return typeof provider === 'string' ? provider : provider.name;
}

/**
 * Converts a host tensor to an ORT tensor, sharing memory when the tensor is
 * contiguous.
 *
 * @public
 */
export function toOrtTensor(binding: Pick<OrtBinding, 'Tensor'>, tensor: HostTensor): OrtTensor {
  const dense = tensor.contiguous();
  const data = dense.offset === 0 && dense.data.length === dense.size ? dense.data : dense.data.subarray(dense.offset, dense.offset + dense.size);
  return new binding.Tensor(tensor.dtype, data, [...tensor.shape]);
}

/**
 * Wraps an ORT tensor as a host tensor without copying.
 *
 * @throws {@link DTypeError} for a type this project does not use
 * @public
 */
export function fromOrtTensor(tensor: OrtTensor): HostTensor {
  const dtype = tensor.type as DataType;
  assertDataType(dtype);
  let data = tensor.data as DataTypeMap[DataType];
  if (dtype === 'float16' && !(data instanceof Uint16Array)) {
    const view = data as unknown as ArrayBufferView;
    data = new Uint16Array(view.buffer, view.byteOffset, view.byteLength / 2);
  }
  if (!ArrayBuffer.isView(data)) throw new DTypeError(`fromOrtTensor: expected typed data for ${dtype}; found ${typeof data}`);
  return new HostTensor(dtype, data, tensor.dims);
}

/**
 * An ONNX Runtime session with host-tensor inputs and outputs, created on the
 * first provider that loads. The session lives on the calling thread or, with
 * `thread: 'worker'`, on a worker thread; both behave the same.
 *
 * @public
 */
export class Runner {
  private released = false;

  /** @internal */
  constructor(
    private readonly session: OrtSession,
    private readonly tensors: Pick<OrtBinding, 'Tensor'>,
    /** The execution provider actually in use. */
    readonly provider: string,
    /** The model inputs (when known from a compiled model). */
    readonly inputs: readonly ValueDescription[] | undefined,
    private readonly validate: boolean,
  ) {}

  /** Input names of the session. */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Output names of the session. */
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Runs the model. On the main thread onnxruntime-node blocks the event loop
   * while the session runs; a runner made with `thread: 'worker'` does not.
   *
   * @param feeds - input tensors by name
   * @param fetches - outputs to return (default: all)
   * @returns output tensors by name (host memory, no copy)
   * @throws {@link ConfigError} after `release`, or for missing/unknown inputs; shape and dtype errors for mismatched inputs
   */
  async run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>> {
    if (this.released) throw new ConfigError('Runner.run: the runner was released');
    if (this.validate && this.inputs) validateFeeds(this.inputs, feeds, 'Runner.run');
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(this.tensors, tensor);
    const results = await this.session.run(ortFeeds, fetches);
    const out: Record<string, HostTensor> = {};
    for (const [name, tensor] of Object.entries(results)) out[name] = fromOrtTensor(tensor);
    return out;
  }

  /** Releases the session (and its worker thread); further calls are no-ops. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/**
 * Resolves runner options against an environment: providers, session
 * options, warnings, validation.
 *
 * @throws {@link ConfigError} for an empty provider list
 */
export function planRunner(environment: RuntimeEnvironment, options: RunnerOptions): RunnerPlan {
  const providers = options.executionProviders ?? environment.defaultProviders;
  if (providers.length === 0) throw new ConfigError('createRunner: expected at least one execution provider; found an empty list');
  return {
    providers,
    strict: options.strict ?? false,
    sessionOptions: {
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
      ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
      ...(options.interOpThreads ? { interOpNumThreads: options.interOpThreads } : {}),
      ...(options.cpuMemoryArena !== undefined ? { enableCpuMemArena: options.cpuMemoryArena } : {}),
      ...(options.memoryPattern !== undefined ? { enableMemPattern: options.memoryPattern } : {}),
      ...(options.executionMode !== undefined ? { executionMode: options.executionMode } : {}),
      logSeverityLevel: 3,
    },
    probe: environment.probe ?? (() => undefined),
    warn: options.onWarning ?? warnOnce,
    validate: options.validateInputs ?? true,
  };
}

/** Opens a session on one provider, or says why that provider cannot be used. */
async function openOn(plan: RunnerPlan, open: SessionOpener, provider: ExecutionProvider): Promise<{ session: OrtSession } | { reason: string }> {
  const name = providerName(provider);
  const unavailable = plan.probe(name);
  if (unavailable !== undefined) return { reason: unavailable };
  try {
    return { session: await open({ ...plan.sessionOptions, executionProviders: [provider] }) };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    // The CPU and WASM providers are always present: a failure there is the model's.
    if (name === 'cpu' || name === 'wasm')
      throw new ConfigError(`createRunner: ONNX Runtime could not load the model on '${name}': ${reason}`, { cause: error });
    return { reason };
  }
}

const warned = new Set<string>();

/** `console.warn`, once per distinct message: a program that opens many sessions warns about a missing provider once. */
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  console.warn(message);
}

/**
 * Opens a session on the first provider of the plan that loads, warning
 * about the ones skipped (or failing under `strict`), and wraps it in a
 * {@link Runner}.
 *
 * @param plan - resolved options ({@link planRunner})
 * @param open - opens a session with given session options
 * @param tensors - builds the tensors `open`'s sessions take
 * @param inputs - the model inputs to validate feeds against, when known
 * @throws {@link ProviderUnavailableError} when no provider loads, or the first fails under `strict`; {@link ConfigError} when the model does not load on CPU/WASM
 */
export async function openRunner(
  plan: RunnerPlan,
  open: SessionOpener,
  tensors: Pick<OrtBinding, 'Tensor'>,
  inputs: readonly ValueDescription[] | undefined,
): Promise<Runner> {
  const failures: string[] = [];
  for (const provider of plan.providers) {
    const name = providerName(provider);
    const attempt = await openOn(plan, open, provider);
    if ('session' in attempt) {
      if (failures.length > 0)
        plan.warn(`@diffssl/core: execution provider '${providerName(plan.providers[0]!)}' is unavailable (${failures.join('; ')}); using '${name}'`);
      return new Runner(attempt.session, tensors, name, inputs, plan.validate);
    }
    if (plan.strict) throw new ProviderUnavailableError(`createRunner: execution provider '${name}' is unavailable and strict is set: ${attempt.reason}`);
    failures.push(`${name}: ${attempt.reason}`);
  }
  throw new ProviderUnavailableError(`createRunner: no execution provider could be loaded; tried ${failures.join('; ')}`);
}

/** The inputs of a compiled model (undefined for bytes or a path). */
export function modelInputs(model: ModelSource): readonly ValueDescription[] | undefined {
  return model instanceof OnnxModel ? model.inputs : undefined;
}

/**
 * Creates a runner on the calling thread with an explicit ORT binding (the
 * package entry points supply onnxruntime-node or onnxruntime-web).
 *
 * @param binding - the onnxruntime module (or a stand-in with the same shape)
 * @param environment - default providers, model loader and provider probe of the entry point
 * @param model - a compiled model, ONNX bytes, or a path
 * @param options - runner options (`thread: 'worker'` is handled by the Node entry, not here)
 * @throws {@link UnsupportedError} for `thread: 'worker'`; as {@link openRunner}
 */
export async function createRunnerWith(binding: OrtBinding, environment: RuntimeEnvironment, model: ModelSource, options: RunnerOptions = {}): Promise<Runner> {
  if (options.thread === 'worker')
    throw new UnsupportedError("createRunner: thread 'worker' is only available in Node (the @diffssl/core Node entry); found it in this entry point");
  const plan = planRunner(environment, options);
  const source = model instanceof OnnxModel ? await environment.loadModel(model) : model;
  return openRunner(plan, (sessionOptions) => binding.InferenceSession.create(source, sessionOptions), binding, modelInputs(model));
}
