/**
 * A stand-in for onnxruntime, for tests of provider choice that must not
 * depend on the machine: `outcomes` says, per provider name, whether its
 * session opens (`true`) or which error ORT throws. Its sessions compute
 * `y = 2 * x` and record what they were given.
 */
import type { OrtBinding, OrtSession, OrtTensor } from '@diffssl/core';

/** An ORT tensor stand-in. */
export class FakeTensor implements OrtTensor {
  constructor(
    readonly type: string,
    readonly data: ArrayBufferView,
    readonly dims: readonly number[],
  ) {}
}

/** The session options the fake binding records (what the runner passes to ORT). */
export interface FakeSessionOptions {
  readonly executionProviders: readonly (string | { name: string; deviceId?: number })[];
  readonly [option: string]: unknown;
}

/** A fake binding, what it was asked to open, and what it released. */
export interface FakeOrt {
  readonly binding: OrtBinding & { listSupportedBackends(): { name: string; bundled: boolean }[] };
  readonly attempts: FakeSessionOptions[];
  /** The provider of each session asked for, in order. */
  tried(): FakeSessionOptions['executionProviders'][number][];
  readonly released: string[];
}

/**
 * Builds the fake binding.
 *
 * @param outcomes - per provider name: `true` (opens) or ORT's error message
 * @param backends - what `listSupportedBackends()` returns (default: cpu and webgpu bundled, cuda not)
 */
export function fakeOrt(
  outcomes: Record<string, true | string>,
  backends: { name: string; bundled: boolean }[] = [
    { name: 'cpu', bundled: true },
    { name: 'webgpu', bundled: true },
    { name: 'cuda', bundled: false },
  ],
): FakeOrt {
  const attempts: FakeSessionOptions[] = [];
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
  const binding: FakeOrt['binding'] = {
    InferenceSession: {
      async create(_model, options) {
        const sessionOptions = options as FakeSessionOptions;
        attempts.push(sessionOptions);
        const provider = sessionOptions.executionProviders[0]!;
        const name = typeof provider === 'string' ? provider : provider.name;
        const outcome = outcomes[name] ?? `unknown provider ${name}`;
        if (outcome !== true) throw new Error(outcome);
        return session(name);
      },
    },
    Tensor: FakeTensor,
    listSupportedBackends: () => backends,
  };
  const tried = () => attempts.map((options) => options.executionProviders[0]!);
  return { binding, attempts, tried, released };
}
