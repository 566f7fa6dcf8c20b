/**
 * A runner whose ONNX Runtime session lives on a `worker_threads` worker, so
 * that onnxruntime-node's synchronous session creation and runs do not block
 * the calling thread (Node only).
 *
 * The calling thread keeps everything that can throw a DiffSSLError: option
 * checks, provider probing and fallback, feed validation and the conversion
 * of outputs to host tensors, all shared with the in-thread runner
 * (`openRunner`). The worker only holds the ORT session: it creates it, runs
 * it and releases it. Errors ONNX Runtime raises there come back with their
 * name and message (and `code` when set), as the in-thread runner would
 * surface them.
 *
 * The worker is an inline (`eval`) script that imports onnxruntime-node by
 * the absolute URL this module resolves. No separate
 * worker file has to be found next to a bundle, and the same code runs from
 * compiled `dist`, from TypeScript sources under tsx or vitest, and from
 * applications that bundle this package.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { OnnxModel } from '../onnx/model.js';
import {
  attachProfiling,
  modelInputs,
  openRunner,
  planRunner,
  type ModelSource,
  type OrtSession,
  type OrtTensor,
  type Runner,
  type RunnerOptions,
  type RuntimeEnvironment,
} from './runner.js';

/**
 * The worker's program: plain JavaScript, evaluated as is in the worker. It
 * uses only dynamic `import()`, which works whether Node evaluates it as a
 * CommonJS script (the default) or as a module (inherited flags such as
 * `--input-type=module`).
 */
const WORKER_SOURCE = `(async () => {
const { parentPort, workerData } = await import('node:worker_threads');
let ortModule;
let model;
let session;
function ort() {
  ortModule ??= import(workerData.onnxruntimeUrl).then((m) => (m.InferenceSession ? m : m.default));
  return ortModule;
}
// Buffers that a typed array owns whole (and that are not shared) move without a copy.
function movableBuffers(arrays) {
  const buffers = new Set();
  for (const data of arrays) {
    if (data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.byteLength > 0) buffers.add(data.buffer);
  }
  return [...buffers];
}
const handlers = {
  async load({ source }) {
    model = source;
    return { value: null };
  },
  async create({ options }) {
    const { InferenceSession } = await ort();
    session = await InferenceSession.create(model, options);
    model = undefined;
    return { value: { inputNames: session.inputNames, outputNames: session.outputNames } };
  },
  async run({ feeds, fetches }) {
    const { Tensor } = await ort();
    const ortFeeds = {};
    for (const [name, feed] of Object.entries(feeds)) ortFeeds[name] = new Tensor(feed.type, feed.data, feed.dims);
    const results = await session.run(ortFeeds, fetches);
    const outputs = {};
    for (const [name, tensor] of Object.entries(results)) outputs[name] = { type: tensor.type, dims: tensor.dims, data: tensor.data };
    return { value: outputs, transfer: movableBuffers(Object.values(outputs).map((output) => output.data)) };
  },
  async endProfiling() {
    session?.endProfiling?.();
    return { value: null };
  },
  async release() {
    await session?.release();
    session = undefined;
    return { value: null };
  },
};
parentPort.on('message', async ({ id, operation, ...message }) => {
  let reply;
  try {
    reply = await handlers[operation](message);
  } catch (error) {
    const failure = error instanceof Error ? { name: error.name, message: error.message, code: error.code } : { name: 'Error', message: String(error) };
    parentPort.postMessage({ id, error: failure });
    return;
  }
  try {
    parentPort.postMessage({ id, value: reply.value }, reply.transfer ?? []);
  } catch {
    // A buffer that cannot move (memory ONNX Runtime owns) is copied instead.
    parentPort.postMessage({ id, value: reply.value });
  }
});
})();
`;

/** An error as it crosses from the worker. */
interface ErrorMessage {
  name: string;
  message: string;
  code?: unknown;
}

/** Rebuilds an error raised in the worker with its name, message and code. */
function reviveError(failure: ErrorMessage): Error {
  const error = new Error(failure.message);
  error.name = failure.name;
  if (failure.code !== undefined) Object.assign(error, { code: failure.code });
  return error;
}

/** Whether a typed array owns its whole (non-shared) buffer, so it can move without a copy. */
function ownsBuffer(data: ArrayBufferView): boolean {
  return data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.byteLength > 0;
}

/** Request/response messaging with one worker; keeps the process alive only while a request is pending. */
class WorkerChannel {
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (message: { id: number; value?: unknown; error?: ErrorMessage }) => {
      const request = this.pending.get(message.id);
      if (!request) return;
      this.settled(message.id);
      if (message.error) request.reject(reviveError(message.error));
      else request.resolve(message.value);
    });
    worker.on('error', (error: Error) => this.fail(error));
    worker.on('exit', (code: number) => this.fail(new Error(`@diffssl/core: the ONNX Runtime worker thread exited (code ${code})`)));
    worker.unref();
  }

  /** Starts a worker that will import onnxruntime-node as resolved from this package. */
  static start(): WorkerChannel {
    const onnxruntimeUrl = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
    return new WorkerChannel(new Worker(WORKER_SOURCE, { eval: true, workerData: { onnxruntimeUrl } }));
  }

  /** Whether the worker has died or was closed. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Sends one request; `transfer` lists buffers to move instead of copy. */
  call(operation: string, message: object, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      try {
        this.worker.postMessage({ id, operation, ...message }, transfer);
      } catch (error) {
        this.settled(id);
        reject(error as Error);
      }
    });
  }

  /** Terminates the worker; pending requests fail. */
  async close(): Promise<void> {
    this.fail(new Error('@diffssl/core: the ONNX Runtime worker thread was terminated'));
    await this.worker.terminate();
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const [id, request] of this.pending) {
      this.settled(id);
      request.reject(error);
    }
  }
}

/** A tensor as it crosses to the worker: the fields of an ORT tensor, nothing else. */
class WorkerTensor implements OrtTensor {
  constructor(
    readonly type: string,
    readonly data: ArrayBufferView,
    readonly dims: readonly number[],
  ) {}
}

/** An ORT session held by a worker; releasing it terminates the worker. */
class WorkerSession implements OrtSession {
  constructor(
    private readonly channel: WorkerChannel,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    private readonly transferInputs: boolean,
  ) {}

  async run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>> {
    const message: Record<string, WorkerTensor> = {};
    const transfer = new Set<ArrayBuffer>();
    for (const [name, feed] of Object.entries(feeds)) {
      const view = feed.data as ArrayBufferView & { slice(): ArrayBufferView };
      // Move the caller's buffer only when asked to; otherwise copy exactly the tensor's bytes once (a
      // structured clone of a view would copy its whole underlying buffer) and move the copy.
      const data = this.transferInputs && ownsBuffer(view) && !transfer.has(view.buffer as ArrayBuffer) ? view : view.slice();
      if (ownsBuffer(data)) transfer.add(data.buffer as ArrayBuffer);
      message[name] = new WorkerTensor(feed.type, data, feed.dims);
    }
    return (await this.channel.call('run', { feeds: message, fetches }, [...transfer])) as Record<string, OrtTensor>;
  }

  async endProfiling(): Promise<void> {
    await this.channel.call('endProfiling', {});
  }

  async release(): Promise<void> {
    try {
      if (!this.channel.failed) await this.channel.call('release', {});
    } finally {
      await this.channel.close();
    }
  }
}

/**
 * Creates a runner whose session runs on a dedicated worker thread, with the
 * same provider fallback, `strict`, validation and errors as the in-thread
 * runner. The model is sent to the worker once (moved, without a copy, when
 * it was compiled here); `release()` terminates the worker.
 *
 * @param environment - default providers, model loader and provider probe of the Node entry
 * @param model - a compiled model, ONNX bytes (copied to the worker), or a path
 * @param options - runner options; `transferInputs` moves input buffers instead of copying them
 * @returns a runner that does not block the calling thread
 * @throws {@link ProviderUnavailableError} / {@link ConfigError} as the in-thread runner
 */
export async function createWorkerRunner(environment: RuntimeEnvironment, model: ModelSource, options: RunnerOptions = {}): Promise<Runner> {
  const plan = planRunner(environment, options);
  const source = model instanceof OnnxModel ? await environment.loadModel(model) : model;
  const channel = WorkerChannel.start();
  try {
    // Bytes compiled here are ours to move; bytes the caller passed are copied.
    const movable = model instanceof OnnxModel && typeof source !== 'string' && ownsBuffer(source);
    await channel.call('load', { source }, movable ? [source.buffer as ArrayBuffer] : []);
    const transferInputs = options.transferInputs ?? false;
    const runner = await openRunner(
      plan,
      async (sessionOptions) => {
        const { inputNames, outputNames } = (await channel.call('create', { options: sessionOptions })) as { inputNames: string[]; outputNames: string[] };
        return new WorkerSession(channel, inputNames, outputNames, transferInputs);
      },
      { Tensor: WorkerTensor },
      modelInputs(model),
    );
    return attachProfiling(runner, plan, environment, model, options);
  } catch (error) {
    await channel.close();
    throw error;
  }
}
