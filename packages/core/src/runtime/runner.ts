import { ConfigError, DTypeError, ProviderUnavailableError } from '../errors.js';
import { OnnxModel, validateFeeds, type ValueDescription } from '../onnx/model.js';
import { assertDataType, type DataType, type DataTypeMap } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';

/**
 * An execution provider to try, by name or with options. In Node: `cuda`
 * (optionally with a device id), `webgpu`, `cpu`; in browsers: `webgpu`, `wasm`.
 *
 * @public
 */
export type ExecutionProvider = 'cuda' | 'webgpu' | 'cpu' | 'wasm' | { name: 'cuda'; deviceId?: number } | { name: 'webgpu' };

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
  /** Receives fallback warnings; defaults to `console.warn`. */
  onWarning?: (message: string) => void;
  /** Check inputs (dtype, shape) before each run (default true). */
  validateInputs?: boolean;
}

/** The part of an onnxruntime module (node or web) the runner uses. */
export interface OrtBinding {
  InferenceSession: { create(model: Uint8Array | string, options?: object): Promise<OrtSession> };
  Tensor: new (type: string, data: ArrayBufferView, dims: readonly number[]) => OrtTensor;
}

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

/** How a model is given to the runner: compiled, as bytes, or as a file path. */
export type ModelSource = OnnxModel | Uint8Array | string;

function providerName(provider: ExecutionProvider): string {
  return typeof provider === 'string' ? provider : provider.name;
}

/**
 * Converts a host tensor to an ORT tensor, sharing memory when the tensor is
 * contiguous.
 *
 * @public
 */
export function toOrtTensor(binding: OrtBinding, tensor: HostTensor): OrtTensor {
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
 * first provider that loads.
 *
 * @public
 */
export class Runner {
  private released = false;

  /** @internal */
  constructor(
    private readonly binding: OrtBinding,
    private readonly session: OrtSession,
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
   * Runs the model. Note that onnxruntime-node blocks the event loop while the
   * session runs.
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
    for (const [name, tensor] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(this.binding, tensor);
    const results = await this.session.run(ortFeeds, fetches);
    const out: Record<string, HostTensor> = {};
    for (const [name, tensor] of Object.entries(results)) out[name] = fromOrtTensor(tensor);
    return out;
  }

  /** Releases the session; further calls are no-ops. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/** Prepares model bytes or a path for ORT (hook for large models in Node). */
export type ModelLoader = (model: OnnxModel) => Promise<Uint8Array | string>;

/** Opens a session on one provider, or says why it cannot be used. */
async function openSession(
  binding: OrtBinding,
  source: Uint8Array | string,
  provider: ExecutionProvider,
  sessionOptions: object,
  probe: ProviderProbe,
): Promise<{ session: OrtSession } | { reason: string }> {
  const name = providerName(provider);
  const unavailable = probe(name);
  if (unavailable !== undefined) return { reason: unavailable };
  try {
    return { session: await binding.InferenceSession.create(source, { ...sessionOptions, executionProviders: [provider] }) };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    // The CPU and WASM providers are always present: a failure there is the model's.
    if (name === 'cpu' || name === 'wasm') throw new ConfigError(`createRunner: ONNX Runtime could not load the model on '${name}': ${reason}`, { cause: error });
    return { reason };
  }
}

/**
 * Says why a provider cannot work before ONNX Runtime is asked (for example a
 * provider library that is not installed), or undefined to just try it.
 */
export type ProviderProbe = (provider: string) => string | undefined;

/**
 * Creates a runner with an explicit ORT binding (the package entry points
 * supply onnxruntime-node or onnxruntime-web).
 */
export async function createRunnerWith(
  binding: OrtBinding,
  defaultProviders: readonly ExecutionProvider[],
  loadModel: ModelLoader,
  model: ModelSource,
  options: RunnerOptions = {},
  probe: ProviderProbe = () => undefined,
): Promise<Runner> {
  const providers = options.executionProviders ?? defaultProviders;
  if (providers.length === 0) throw new ConfigError('createRunner: expected at least one execution provider; found an empty list');
  const warn = options.onWarning ?? ((message: string) => console.warn(message));
  const source = model instanceof OnnxModel ? await loadModel(model) : model;
  const failures: string[] = [];
  const sessionOptions = {
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    ...(options.interOpThreads ? { interOpNumThreads: options.interOpThreads } : {}),
    logSeverityLevel: 3,
  };
  for (const [index, provider] of providers.entries()) {
    const name = providerName(provider);
    const attempt = await openSession(binding, source, provider, sessionOptions, probe);
    if ('session' in attempt) {
      if (index > 0) warn(`@diffssl/core: execution provider '${providerName(providers[0]!)}' is unavailable (${failures.join('; ')}); using '${name}'`);
      return new Runner(binding, attempt.session, name, model instanceof OnnxModel ? model.inputs : undefined, options.validateInputs ?? true);
    }
    failures.push(`${name}: ${attempt.reason}`);
    if (options.strict) {
      throw new ProviderUnavailableError(`createRunner: execution provider '${name}' is unavailable and strict is set: ${attempt.reason}`);
    }
  }
  throw new ProviderUnavailableError(`createRunner: no execution provider could be loaded; tried ${failures.join('; ')}`);
}
