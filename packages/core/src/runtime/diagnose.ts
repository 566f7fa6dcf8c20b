/**
 * Which execution providers work on this machine and why the others do not
 * (Node), for `diffssl doctor`: each provider is asked to open a one-op model
 * under `strict`, after the same probes the runner uses.
 */
import { createRequire } from 'node:module';
import { Graph } from '../graph/graph.js';
import { compileModel } from '../onnx/model.js';
import { relu } from '../ops/index.js';
import { NODE_PROBES, probeNodeProvider, type NodeProbes } from './node-probes.js';
import { nodeEnvironment } from './node.js';
import { createRunnerWith, type OrtBinding, type Runner } from './runner.js';
import type { WebGpuAdapterReport } from './webgpu-adapter.js';

/**
 * One provider's state.
 *
 * @public
 */
export interface ProviderDiagnosis {
  /** `cuda`, `webgpu` or `cpu`. */
  readonly name: string;
  /** Whether a session opens on it. */
  readonly available: boolean;
  /** Why not (the library that is missing and how to install it, ONNX Runtime's message), or a note when available. */
  readonly detail: string;
}

/**
 * What {@link diagnoseProviders} found.
 *
 * @public
 */
export interface ProvidersDiagnosis {
  /** onnxruntime-node's version. */
  readonly ortVersion: string;
  /** ORT's own list: backends and whether each is bundled in the npm package (`cuda` is not by default). */
  readonly backends: readonly OrtBackend[];
  /** CUDA, WebGPU and CPU, in that order. */
  readonly providers: readonly ProviderDiagnosis[];
  /** The WebGPU adapter, or why none is known. */
  readonly adapter: WebGpuAdapterReport;
  /** What `auto` chooses here, and why. */
  readonly auto: AutoChoice;
}

/** A backend as onnxruntime-node's `listSupportedBackends()` lists it. @public */
export interface OrtBackend {
  /** `cpu`, `webgpu`, `cuda`, ... */
  readonly name: string;
  /** Whether it comes inside the npm package (CUDA's libraries do not). */
  readonly bundled: boolean;
}

/** The provider `auto` chose and why ({@link Runner.reason}). @public */
export interface AutoChoice {
  /** The provider. */
  readonly provider: string;
  /** Why: what `auto` skipped, and the reasons. */
  readonly reason: string;
}

/** An onnxruntime module, optionally with `listSupportedBackends()` (onnxruntime-node has it). @public */
export interface DiagnoseBinding extends OrtBinding {
  /** The backends this build supports. */
  listSupportedBackends?: () => readonly OrtBackend[];
}

/**
 * Where {@link diagnoseProviders} gets its facts (tests pass fakes; each
 * defaults to the real one).
 *
 * @public
 */
export interface DiagnoseOptions {
  /** The onnxruntime module (default onnxruntime-node). */
  readonly binding?: DiagnoseBinding;
  /** onnxruntime's version (default: onnxruntime-node's package.json). */
  readonly ortVersion?: string;
  /** Why a provider cannot work before ORT is asked (default: the CUDA library check). */
  readonly probe?: (provider: string) => string | undefined;
  /** The WebGPU adapter (default: read through the optional `webgpu` package, once per process). */
  readonly adapter?: () => Promise<WebGpuAdapterReport>;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/**
 * Opens a one-op model on each of `cuda`, `webgpu` and `cpu` (strict, so
 * nothing falls back) and under `auto`, and reports which work and why the
 * others do not.
 *
 * @param options - fakes for tests; every field defaults to the real source
 * @public
 */
export async function diagnoseProviders(options: DiagnoseOptions = {}): Promise<ProvidersDiagnosis> {
  type Binding = NonNullable<DiagnoseOptions['binding']>;
  const imported = options.binding ?? ((await import('onnxruntime-node')) as unknown as Binding & { default?: Binding });
  const binding: Binding = imported.InferenceSession ? imported : (imported as Binding & { default?: Binding }).default!;
  const ortVersion = options.ortVersion ?? (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  const probes: NodeProbes = { provider: options.probe ?? probeNodeProvider, adapter: options.adapter ?? NODE_PROBES.adapter };
  const environment = nodeEnvironment(async (model) => model.serialize().model, probes);
  const graph = new Graph();
  const model = compileModel({ outputs: { y: relu(graph.input('x', 'float32', [1, 4])) } });
  const adapter = await probes.adapter();
  const providers: ProviderDiagnosis[] = [];
  for (const name of ['cuda', 'webgpu', 'cpu'] as const) {
    try {
      const runner = await createRunnerWith(binding, environment, model, { executionProviders: [name], strict: true, onWarning: () => {} });
      await runner.release();
      const detail =
        name === 'webgpu' && adapter.found && adapter.adapter.software
          ? 'works, on a software adapter (runs on the CPU): auto never chooses it; name it with --provider webgpu'
          : 'works';
      providers.push({ name, available: true, detail });
    } catch (error) {
      const reason = firstLine(error).replace(/^createRunner: execution provider '\w+' is unavailable and strict is set: /, '');
      providers.push({ name, available: false, detail: name === 'webgpu' && !adapter.found ? `${adapter.reason}; ONNX Runtime: ${reason}` : reason });
    }
  }
  const chosen = await createRunnerWith(binding, environment, model, { executionProviders: ['auto'], onWarning: () => {} });
  await chosen.release();
  const backends = binding.listSupportedBackends?.().map(({ name, bundled }) => ({ name, bundled })) ?? [];
  return { ortVersion, backends, providers, adapter, auto: { provider: chosen.provider, reason: chosen.reason } };
}
