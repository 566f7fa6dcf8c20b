import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { OnnxModel } from '../onnx/model.js';
import {
  createRunnerWith,
  type ExecutionProvider,
  type ModelSource,
  type OrtBinding,
  type ProfileStore,
  type Runner,
  type RunnerOptions,
  type RuntimeEnvironment,
} from './runner.js';
import { createWorkerRunner } from './worker-runner.js';

/** Providers tried by default in Node: CUDA, then CPU. @public */
export const DEFAULT_NODE_PROVIDERS: readonly ExecutionProvider[] = ['cuda', 'cpu'];

/** Models with more initializer bytes than this are written with external data before loading. */
const INLINE_LIMIT_BYTES = 1_500_000_000;

/**
 * Writes a model to `path`; initializers of at least `externalDataThreshold`
 * bytes go to `<path>.data` beside it (required above 2 GB).
 *
 * @param model - the compiled model
 * @param path - the `.onnx` file to write
 * @param options - `externalDataThreshold` in bytes (default: external data only when the model is large)
 * @public
 */
export async function saveModel(model: OnnxModel, path: string, options: { externalDataThreshold?: number } = {}): Promise<void> {
  const threshold = options.externalDataThreshold ?? (model.initializerBytes > INLINE_LIMIT_BYTES ? 1024 : Infinity);
  const location = `${path.split(/[\\/]/).pop()!}.data`;
  const serialized = model.serialize({ externalDataThreshold: threshold, externalDataLocation: location });
  if (serialized.externalData.length > 0) {
    const stream = createWriteStream(`${path}.data`);
    for (const chunk of serialized.externalData) {
      if (!stream.write(chunk)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
  await writeFile(path, serialized.model);
}

/**
 * onnxruntime-node loads the CUDA provider from libraries its install script
 * downloads next to its binding; when they are absent (the default here, see
 * the README's CUDA section) say so instead of letting ONNX Runtime fail.
 */
function probeNodeProvider(provider: string): string | undefined {
  if (provider !== 'cuda') return undefined;
  try {
    const root = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const binaries = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    const library = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    if (!existsSync(join(binaries, library))) {
      return `the CUDA provider library (${library}) is not installed with onnxruntime-node; install with ONNXRUNTIME_NODE_INSTALL=cuda12 and the onnxruntime-node build script enabled`;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

let profileCounter = 0;

/**
 * ORT profiles (`recordPlacement`) go to the temporary folder as
 * `<prefix>_<date>.json`; the runner reads and deletes them.
 */
const NODE_PROFILES: ProfileStore = {
  prefix: () => join(tmpdir(), `diffssl-profile-${process.pid}-${profileCounter++}-${Math.random().toString(36).slice(2, 8)}`),
  async take(prefix) {
    const directory = dirname(prefix);
    const files = (await readdir(directory)).filter((name) => name.startsWith(`${basename(prefix)}_`) && name.endsWith('.json'));
    if (files.length === 0) throw new ConfigError(`Runner.placement: expected an ONNX Runtime profile ${prefix}_<date>.json; found none`);
    const text = await readFile(join(directory, files[0]!), 'utf8');
    for (const file of files) await rm(join(directory, file), { force: true });
    return text;
  },
  readModel: (path) => readFile(path),
};

/** Temporary model folders (external data, often GBs) still on disk: removed on release, or at process exit. */
const temporaryDirectories = new Set<string>();
let exitHookInstalled = false;

function removeTemporaryDirectoriesNow(): void {
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
  temporaryDirectories.clear();
}

async function removeTemporaryDirectory(directory: string): Promise<void> {
  temporaryDirectories.delete(directory);
  await rm(directory, { recursive: true, force: true });
}

/**
 * `createRunner` with the inline limit as a parameter (tests lower it). A
 * compiled model with more initializer bytes is written with external data
 * to a temporary folder that `release()`, a failed load or process exit removes.
 *
 * @internal
 */
export async function createNodeRunner(model: ModelSource, options: RunnerOptions = {}, inlineLimitBytes: number): Promise<Runner> {
  let directory: string | undefined;
  const loadModel = async (compiled: OnnxModel): Promise<Uint8Array | string> => {
    if (compiled.initializerBytes <= inlineLimitBytes) return compiled.serialize().model;
    directory = await mkdtemp(join(tmpdir(), 'diffssl-model-'));
    if (!exitHookInstalled) process.once('exit', removeTemporaryDirectoriesNow);
    exitHookInstalled = true;
    temporaryDirectories.add(directory);
    const path = join(directory, 'model.onnx');
    await saveModel(compiled, path, { externalDataThreshold: 1024 });
    return path;
  };
  const environment: RuntimeEnvironment = { defaultProviders: DEFAULT_NODE_PROVIDERS, loadModel, probe: probeNodeProvider, profiles: NODE_PROFILES };
  let runner: Runner;
  try {
    if (options.thread === 'worker') {
      runner = await createWorkerRunner(environment, model, options);
    } else {
      const ort = (await import('onnxruntime-node')) as unknown as OrtBinding & { default?: OrtBinding };
      runner = await createRunnerWith(ort.InferenceSession ? ort : ort.default!, environment, model, options);
    }
  } catch (error) {
    if (directory) await removeTemporaryDirectory(directory);
    throw error;
  }
  if (directory) {
    const loaded = directory;
    const release = runner.release.bind(runner);
    runner.release = async () => {
      try {
        await release();
      } finally {
        await removeTemporaryDirectory(loaded);
      }
    };
  }
  return runner;
}

/**
 * Creates an ONNX Runtime session in Node (onnxruntime-node), trying the
 * execution providers in order and falling back with a warning, or failing
 * when `strict` is set.
 *
 * With `thread: 'worker'` the session is created and run on a dedicated
 * worker thread, so the event loop stays free while ONNX Runtime works (inputs
 * are copied to the worker once, outputs come back without a copy, and
 * `release()` terminates the worker).
 *
 * @param model - a compiled model, ONNX bytes, or a path to an `.onnx` file
 * @param options - providers (default `['cuda', 'cpu']`), strict, threads, optimization level, `thread`
 * @returns a runner that reports the provider in use
 * @throws {@link ProviderUnavailableError} when no provider loads (or the first fails under `strict`)
 * @example
 * ```ts
 * const runner = await createRunner(model, { executionProviders: [{ name: 'cuda', deviceId: 0 }, 'cpu'] });
 * console.log(runner.provider); // 'cpu' on a machine without CUDA
 * // Off the main thread: timers and I/O keep running during `run`.
 * const background = await createRunner(model, { thread: 'worker' });
 * ```
 * @public
 */
export async function createRunner(model: ModelSource, options?: RunnerOptions): Promise<Runner> {
  return createNodeRunner(model, options, INLINE_LIMIT_BYTES);
}
