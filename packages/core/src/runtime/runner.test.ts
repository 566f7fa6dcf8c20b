import { describe, expect, it } from 'vitest';
import { compileModel, ConfigError, createRunner, DTypeError, Graph, HostTensor, ProviderUnavailableError, relu, ShapeError } from '../index.js';

function model() {
  const graph = new Graph();
  const x = graph.input('x', 'float32', ['batch', 3]);
  return compileModel({ outputs: { y: relu(x) } });
}

describe('createRunner', () => {
  it('falls back from an unavailable CUDA provider to CPU with a warning and reports the provider used', async () => {
    const warnings: string[] = [];
    const runner = await createRunner(model(), { executionProviders: [{ name: 'cuda', deviceId: 0 }, 'cpu'], onWarning: (m) => warnings.push(m) });
    expect(runner.provider).toBe('cpu');
    expect(warnings.join('\n')).toMatch(/'cuda' is unavailable.*using 'cpu'/s);
    const { y } = await runner.run({ x: HostTensor.from('float32', [2, 3], [-1, 2, -3, 4, -5, 6]) });
    expect(y!.toArray()).toEqual([0, 2, 0, 4, 0, 6]);
    await runner.release();
    await runner.release();
    await expect(runner.run({ x: HostTensor.zeros('float32', [1, 3]) })).rejects.toThrow(/released/);
  });

  it('fails instead of falling back when strict is set', async () => {
    const error = await createRunner(model(), { executionProviders: ['cuda', 'cpu'], strict: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).code).toBe('ERR_PROVIDER_UNAVAILABLE');
    expect((error as Error).message).toMatch(/'cuda' is unavailable and strict is set/);
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
