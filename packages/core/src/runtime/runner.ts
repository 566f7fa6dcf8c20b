import { ConfigError, DTypeError, ProviderUnavailableError, UnsupportedError } from '../errors.js';
import { OnnxModel, validateFeeds, type ValueDescription } from '../onnx/model.js';
import { assertDataType, type DataType, type DataTypeMap } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { placementFromProfile, type PlacementReport } from './placement.js';

/**
 * An execution provider to try, by name or with options. In Node: `cuda`
 * (optionally with a device id), `webgpu`, `cpu`; in browsers: `webgpu`, `wasm`.
 *
 * `auto` (the default everywhere) picks silently: in Node CUDA when its
 * provider library is installed and a session opens on it, then WebGPU when a
 * hardware adapter is present (never a software one such as lavapipe, which
 * is slower than the CPU provider), then the CPU; in browsers WebGPU on a
 * hardware adapter, then WASM. {@link Runner.reason} says what it chose and why.
 *
 * @public
 */
export type ExecutionProvider =
  | 'auto'
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
  /**
   * Fail with {@link ProviderUnavailableError} instead of falling back when a
   * named provider (not `auto`, whose choice never fails) is unavailable.
   */
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
  /**
   * Receives fallback warnings, given only when a provider the caller named is
   * unavailable (`auto` is silent); defaults to `console.warn`, once per
   * distinct message in a process.
   */
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
  /**
   * Record where ONNX Runtime runs each node (its profiler), for
   * {@link Runner.placement}. Node only. Default false.
   */
  recordPlacement?: boolean;
  /**
   * Receives the placement of the graph, with the session's output names,
   * after the runner's first run (implies `recordPlacement`; profiling then
   * stops). Node only.
   */
  onPlacement?: (report: PlacementReport, outputNames: readonly string[]) => void;
}

/** The part of an onnxruntime module (node or web) the runner uses. @public */
export interface OrtBinding {
  /** Opens sessions. */
  InferenceSession: {
    /** Opens a session on a model (bytes or a path) with session options. */
    create(model: Uint8Array | string, options?: object): Promise<OrtSession>;
  };
  /** Makes tensors. */
  Tensor: OrtTensorConstructor;
}

/** Makes an ORT tensor (or a stand-in with the same fields) from typed data. @public */
export type OrtTensorConstructor = new (type: string, data: ArrayBufferView, dims: readonly number[]) => OrtTensor;

/** The part of an ORT session the runner uses. @public */
export interface OrtSession {
  /** The model's input names. */
  readonly inputNames: readonly string[];
  /** The model's output names. */
  readonly outputNames: readonly string[];
  /** Runs the model on named inputs; returns the named outputs (`fetches`, or all). */
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  /** Frees the session. */
  release(): Promise<void>;
  /** Stops profiling and writes the profile (sessions made with `enableProfiling`). */
  endProfiling?(): unknown;
}

/** The part of an ORT tensor the runner uses. @public */
export interface OrtTensor {
  /** The element type (`float32`, `int64`, ...). */
  readonly type: string;
  /** The shape. */
  readonly dims: readonly number[];
  /** The elements (a typed array for the types this project uses). */
  readonly data: unknown;
  /** Frees device memory, where the tensor has some. */
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

/**
 * One provider that `auto` may choose, in order, with a check that says why
 * not (before ONNX Runtime is asked), or undefined to try it.
 */
export interface AutoCandidate {
  readonly provider: ExecutionProvider;
  readonly check?: () => Promise<string | undefined>;
}

/** What an entry point (Node or browser) supplies to open runners. */
export interface RuntimeEnvironment {
  /** Providers tried when the options name none. */
  readonly defaultProviders: readonly ExecutionProvider[];
  /** What `auto` tries, in order (default: the CPU, or WASM in browsers, alone). The last should always load. */
  readonly autoCandidates?: readonly AutoCandidate[];
  /** Turns a compiled model into what ORT loads. */
  readonly loadModel: ModelLoader;
  /** Rules out providers before ORT is asked (default: try every provider). */
  readonly probe?: ProviderProbe;
  /** Where session profiles go (needed for `recordPlacement`; Node only). */
  readonly profiles?: ProfileStore;
}

/** Names and collects the profile files ORT writes for `recordPlacement`. */
export interface ProfileStore {
  /** A fresh file prefix for one session's profile. */
  prefix(): string;
  /** Reads the profile written under `prefix`, deletes it and returns its text. */
  take(prefix: string): Promise<string>;
  /** Reads a model given to the runner as a path (for the weight shapes of the FLOP count). */
  readModel?(path: string): Promise<Uint8Array>;
}

/** What a runner recording its placement keeps. */
interface Profiling {
  readonly prefix: string;
  readonly store: ProfileStore;
  readonly model: ModelSource;
  readonly onPlacement: RunnerOptions['onPlacement'];
  ended: boolean;
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
  /** ORT's profiler on (`recordPlacement`). */
  readonly enableProfiling?: boolean;
  /** Where ORT writes the profile (`<prefix>_<date>.json`). */
  readonly profileFilePrefix?: string;
}

/** Opens an ORT session (in this thread or another) with the given options. */
export type SessionOpener = (options: SessionOptions) => Promise<OrtSession>;

/** Runner options resolved against an entry point's environment. */
export interface RunnerPlan {
  readonly providers: readonly ExecutionProvider[];
  readonly strict: boolean;
  readonly sessionOptions: Omit<SessionOptions, 'executionProviders'>;
  readonly probe: ProviderProbe;
  readonly autoCandidates: readonly AutoCandidate[];
  readonly warn: (message: string) => void;
  readonly validate: boolean;
}

/** The name of a provider (`cuda` for `{ name: 'cuda', deviceId: 1 }`). */
export function providerName(provider: ExecutionProvider): string {
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
  /** @internal Set when the runner records its placement. */
  profiling: Profiling | undefined;

  /** @internal */
  constructor(
    private readonly session: OrtSession,
    private readonly tensors: Pick<OrtBinding, 'Tensor'>,
    /** The execution provider actually in use (`cuda`, `webgpu`, `cpu`, `wasm`; never `auto`). */
    readonly provider: string,
    /** The model inputs (when known from a compiled model). */
    readonly inputs: readonly ValueDescription[] | undefined,
    private readonly validate: boolean,
    /**
     * Why this provider is in use, for `--verbose` and `diffssl doctor`: what
     * `auto` skipped and why (`auto: cuda skipped (...); webgpu skipped (...); chose cpu`),
     * or which named providers were unavailable.
     */
    readonly reason: string = `'${provider}' as named`,
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
    if (this.profiling?.onPlacement && !this.profiling.ended) this.profiling.onPlacement(await this.placement(), this.outputNames);
    return out;
  }

  /**
   * Where ONNX Runtime ran the graph's nodes in the runs so far, as shares of
   * the graph's FLOPs per provider and the nodes that fell back (see
   * `placementFromProfile` for the FLOP rules). Ends profiling: call it once,
   * after at least one run.
   *
   * @throws {@link ConfigError} for a runner made without `recordPlacement`, a second call, or a session that wrote no profile
   */
  async placement(): Promise<PlacementReport> {
    const profiling = this.profiling;
    if (!profiling) throw new ConfigError('Runner.placement: expected a runner created with recordPlacement: true; found none');
    if (profiling.ended) throw new ConfigError('Runner.placement: profiling already ended (placement is read once)');
    profiling.ended = true;
    await this.session.endProfiling?.();
    const text = await profiling.store.take(profiling.prefix);
    const model = typeof profiling.model === 'string' ? await profiling.store.readModel?.(profiling.model) : profiling.model;
    return placementFromProfile(JSON.parse(text), this.provider, model);
  }

  /** Releases the session (and its worker thread); further calls are no-ops. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const profiling = this.profiling;
    if (profiling && !profiling.ended) {
      profiling.ended = true;
      await this.session.endProfiling?.();
      await profiling.store.take(profiling.prefix).catch(() => undefined);
    }
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
  const profiling = profilingOptions(environment, options);
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
      ...profiling,
    },
    probe: environment.probe ?? (() => undefined),
    autoCandidates: environment.autoCandidates ?? [{ provider: 'cpu' }],
    warn: options.onWarning ?? warnOnce,
    validate: options.validateInputs ?? true,
  };
}

/** Session options that turn ORT's profiler on for `recordPlacement`. */
function profilingOptions(environment: RuntimeEnvironment, options: RunnerOptions): { enableProfiling?: true; profileFilePrefix?: string } {
  if (!options.recordPlacement && !options.onPlacement) return {};
  if (!environment.profiles)
    throw new UnsupportedError(
      'createRunner: recordPlacement needs a place for ONNX Runtime profiles (the @diffssl/core Node entry); found none in this entry point',
    );
  return { enableProfiling: true, profileFilePrefix: environment.profiles.prefix() };
}

/**
 * Makes a runner opened with a plan that profiles record its placement
 * (`Runner.placement`); a no-op for other plans.
 */
export function attachProfiling(runner: Runner, plan: RunnerPlan, environment: RuntimeEnvironment, model: ModelSource, options: RunnerOptions): Runner {
  const prefix = plan.sessionOptions.profileFilePrefix;
  if (prefix && environment.profiles)
    runner.profiling = {
      prefix,
      store: environment.profiles,
      model,
      onPlacement: options.onPlacement,
      ended: false,
    };
  return runner;
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

/** One provider to try: named by the caller, or a candidate of `auto`. */
interface Attempt {
  readonly provider: ExecutionProvider;
  readonly named: boolean;
  readonly check?: () => Promise<string | undefined>;
}

/** The plan's providers with `auto` expanded into its candidates (those not named before it). */
function attemptsOf(plan: RunnerPlan): Attempt[] {
  const attempts: Attempt[] = [];
  const seen = new Set<string>();
  for (const provider of plan.providers) {
    if (provider === 'auto') {
      for (const candidate of plan.autoCandidates) {
        const name = providerName(candidate.provider);
        if (seen.has(name)) continue;
        seen.add(name);
        attempts.push({ provider: candidate.provider, named: false, ...(candidate.check ? { check: candidate.check } : {}) });
      }
    } else {
      seen.add(providerName(provider));
      attempts.push({ provider, named: true });
    }
  }
  return attempts;
}

/**
 * Opens a session on the first provider of the plan that loads and wraps it
 * in a {@link Runner}. A named provider that is unavailable is skipped with a
 * warning (or fails under `strict`); `auto` skips its candidates silently and
 * records why in {@link Runner.reason}.
 *
 * @param plan - resolved options ({@link planRunner})
 * @param open - opens a session with given session options
 * @param tensors - builds the tensors `open`'s sessions take
 * @param inputs - the model inputs to validate feeds against, when known
 * @throws {@link ProviderUnavailableError} when no provider loads, or a named one fails under `strict`; {@link ConfigError} when the model does not load on CPU/WASM
 */
export async function openRunner(
  plan: RunnerPlan,
  open: SessionOpener,
  tensors: Pick<OrtBinding, 'Tensor'>,
  inputs: readonly ValueDescription[] | undefined,
): Promise<Runner> {
  const failures: { name: string; reason: string }[] = [];
  const skipped: string[] = [];
  const listed = (list: readonly { name: string; reason: string }[]) => list.map(({ name, reason }) => `${name}: ${reason}`).join('; ');
  for (const attempt of attemptsOf(plan)) {
    const name = providerName(attempt.provider);
    const refusal = attempt.check ? await attempt.check() : undefined;
    const result = refusal === undefined ? await openOn(plan, open, attempt.provider) : { reason: refusal };
    if ('session' in result) {
      if (failures.length > 0) plan.warn(`@diffssl/core: execution provider '${failures[0]!.name}' is unavailable (${listed(failures)}); using '${name}'`);
      const notes = [
        ...(failures.length > 0 ? [`unavailable: ${listed(failures)}`] : []),
        ...(skipped.length > 0 ? [`auto skipped ${skipped.join('; ')}`] : []),
      ];
      const how = attempt.named ? `'${name}' as named` : `'${name}' chosen by auto`;
      return new Runner(result.session, tensors, name, inputs, plan.validate, notes.length > 0 ? `${how} (${notes.join('; ')})` : how);
    }
    if (!attempt.named) {
      skipped.push(`${name}: ${result.reason}`);
      continue;
    }
    if (plan.strict) throw new ProviderUnavailableError(`createRunner: execution provider '${name}' is unavailable and strict is set: ${result.reason}`);
    failures.push({ name, reason: result.reason });
  }
  throw new ProviderUnavailableError(
    `createRunner: no execution provider could be loaded; tried ${[listed(failures), ...skipped].filter((part) => part !== '').join('; ')}`,
  );
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
  const runner = await openRunner(plan, (sessionOptions) => binding.InferenceSession.create(source, sessionOptions), binding, modelInputs(model));
  return attachProfiling(runner, plan, environment, model, options);
}
