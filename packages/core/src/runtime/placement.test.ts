/**
 * The placement report: the profile parser and its FLOP rules on a synthetic
 * ORT profile with hand-computed FLOPs, and a real graph on the CPU provider.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { compileModel, ConfigError, conv2d, createRunner, formatPlacement, Graph, HostTensor, matmul, placementFromProfile, relu } from '../index.js';

/** One kernel event as ORT's profiler writes it. */
function kernel(name: string, opType: string, provider: string, inputs: number[][], outputs: number[][]) {
  return {
    cat: 'Node',
    name: `${name}_kernel_time`,
    ph: 'X',
    args: {
      op_name: opType,
      provider,
      input_type_shape: inputs.map((shape) => ({ float: shape })),
      output_type_shape: outputs.map((shape) => ({ float: shape })),
    },
  };
}

const GPU = 'WebGpuExecutionProvider';
const CPU = 'CPUExecutionProvider';

/** A compiled model with one grouped convolution (weight [6, 2, 3, 3], an initializer). */
function convModel() {
  const graph = new Graph();
  const x = graph.input('x', 'float32', [2, 4, 8, 8]);
  const w = graph.weight('w', HostTensor.zeros('float32', [6, 2, 3, 3]));
  const model = compileModel({ outputs: { y: conv2d(x, w, undefined, { padding: 1, groups: 2 }) } });
  const node = model.graphProto.node.find((n) => n.opType === 'Conv')!;
  return { model, convName: node.name! };
}

describe('placementFromProfile', () => {
  it.each(['compiled', 'bytes'] as const)('applies the FLOP rules and splits them by provider (model %s)', (form) => {
    const { model: compiled, convName } = convModel();
    const model = form === 'compiled' ? compiled : compiled.serialize().model;
    const profile = [
      { cat: 'Session', name: 'model_run', args: {} },
      // Conv with its weight listed: 2 * out (2*6*8*8 = 768) * Cin/g*kh*kw (2*3*3 = 18) = 27648.
      kernel(
        'a/Conv_1',
        'Conv',
        GPU,
        [
          [2, 4, 8, 8],
          [6, 2, 3, 3],
        ],
        [[2, 6, 8, 8]],
      ),
      // The NHWC rewrite of the model's conv: weight missing, found in the model by the stripped name: the same 27648.
      kernel(`${convName}_token_3`, 'Conv', GPU, [[2, 8, 8, 4]], [[2, 8, 8, 6]]),
      // MatMul [2,3,5,7] x [7,4]: 2 * 120 * 7 = 1680.
      kernel(
        'm/MatMul_2/MatMulAddFusion',
        'MatMul',
        GPU,
        [
          [2, 3, 5, 7],
          [7, 4],
        ],
        [[2, 3, 5, 4]],
      ),
      // Gemm with a transposed A [7, 5] (K 7, M 5) to [5, 4]: 2 * 20 * 7 = 280.
      kernel('g/Gemm_3', 'Gemm', CPU, [[7, 5], [7, 4], [4]], [[5, 4]]),
      // ConvTranspose X [1,3,4,4], W [3,2,3,3]: 2 * 48 * 18 = 1728.
      kernel(
        't/ConvTranspose_4',
        'ConvTranspose',
        GPU,
        [
          [1, 3, 4, 4],
          [3, 2, 3, 3],
        ],
        [[1, 2, 9, 9]],
      ),
      // Anything else: 1 per output element (two outputs: 6 + 2).
      kernel(
        's/Split_5',
        'Split',
        CPU,
        [[2, 4]],
        [
          [2, 3],
          [2, 1],
        ],
      ),
      // A second run of the same node counts once.
      kernel(
        'a/Conv_1',
        'Conv',
        GPU,
        [
          [2, 4, 8, 8],
          [6, 2, 3, 3],
        ],
        [[2, 6, 8, 8]],
      ),
      // A conv whose weight is found nowhere: 1 per output element (12), listed as unresolved.
      kernel('lost/Conv_9_token_1', 'Conv', CPU, [[1, 2, 2, 3]], [[1, 2, 2, 3]]),
      { cat: 'Node', name: 'a/Conv_1_fence_before', args: { op_name: 'Conv' } },
    ];
    const report = placementFromProfile(profile, 'webgpu', model);
    const gpu = 27648 + 27648 + 1680 + 1728;
    const cpu = 280 + 8 + 12;
    expect(report.provider).toBe(GPU);
    expect(report.flopsByProvider).toEqual({ [GPU]: gpu, [CPU]: cpu });
    expect(report.nodesByProvider).toEqual({ [GPU]: 4, [CPU]: 3 });
    expect(report.totalFlops).toBe(gpu + cpu);
    expect(report.share).toBeCloseTo(gpu / (gpu + cpu), 12);
    expect(report.fallbacks.map((node) => [node.opType, node.name, node.flops])).toEqual([
      ['Gemm', 'g/Gemm_3', 280],
      ['Conv', 'lost/Conv_9_token_1', 12],
      ['Split', 's/Split_5', 8],
    ]);
    expect(report.unresolved).toEqual(['lost/Conv_9_token_1']);
    const lines = formatPlacement(report, 'test graph');
    expect(lines[0]).toMatch(
      /^placement of test graph: 59\.0 kFLOP in 7 nodes; WebGpuExecutionProvider 99\.49% \(4 nodes\), CPUExecutionProvider 0\.51% \(3 nodes\)$/,
    );
    expect(lines).toContain('    Gemm g/Gemm_3 on CPUExecutionProvider: 280 FLOP');
  });

  it('without the model, a rewritten conv whose weight the profile lacks is unresolved', () => {
    const { convName } = convModel();
    const report = placementFromProfile([kernel(`${convName}_token_3`, 'Conv', GPU, [[2, 8, 8, 4]], [[2, 8, 8, 6]])], 'webgpu');
    expect(report.totalFlops).toBe(768);
    expect(report.unresolved).toEqual([`${convName}_token_3`]);
  });

  it('refuses what is not a profile', () => {
    expect(() => placementFromProfile({}, 'cpu')).toThrow(/expected an array of profiler events; found object/);
    expect(() => placementFromProfile([{ cat: 'Session', name: 'x' }], 'cpu')).toThrow(ConfigError);
  });
});

describe('Runner.placement', () => {
  function graph() {
    const g = new Graph();
    const x = g.input('x', 'float32', ['batch', 3, 6, 6]);
    const w = g.weight('w', HostTensor.full('float32', [4, 3, 3, 3], 0.1));
    const m = g.weight('m', HostTensor.full('float32', [4, 5], 0.2));
    return compileModel({ outputs: { y: matmul(relu(conv2d(x, w)), m) } });
  }
  const x = HostTensor.full('float32', [2, 3, 6, 6], 1);
  const ownProfiles = () => readdirSync(tmpdir()).filter((name) => name.startsWith(`diffssl-profile-${process.pid}-`));

  it.each(['main', 'worker'] as const)('reports every FLOP of a real graph on the CPU provider, and deletes the profile (%s thread)', async (thread) => {
    const runner = await createRunner(graph(), { executionProviders: ['cpu'], recordPlacement: true, thread });
    await runner.run({ x });
    await runner.run({ x });
    const report = await runner.placement();
    await runner.release();
    expect(report.provider).toBe('CPUExecutionProvider');
    expect(report.share).toBe(1);
    expect(report.fallbacks).toEqual([]);
    expect(report.unresolved).toEqual([]);
    // The matmul: 2 * (2*4*4*5 = 160) * 4 = 1280. The conv: 2 * (2*4*4*4 = 128) * 27 = 6912 at least (ORT's CPU
    // provider rewrites it to its blocked NCHWc layout, whose padded channels it counts as the work they are).
    expect(report.nodes.find((node) => node.opType === 'MatMul')?.flops).toBe(1280);
    expect(report.nodes.find((node) => node.opType === 'Conv')?.flops).toBeGreaterThanOrEqual(6912);
    expect(ownProfiles()).toEqual([]);
    await expect(runner.placement()).rejects.toThrow(/profiling already ended/);
  });

  it('hands the placement to onPlacement after the first run only, and release removes an unread profile', async () => {
    const reports: number[] = [];
    const runner = await createRunner(graph(), { executionProviders: ['cpu'], onPlacement: (report) => reports.push(report.share) });
    await runner.run({ x });
    await runner.run({ x });
    await runner.release();
    expect(reports).toEqual([1]);
    const unread = await createRunner(graph(), { executionProviders: ['cpu'], recordPlacement: true });
    await unread.run({ x });
    await unread.release();
    expect(ownProfiles()).toEqual([]);
  });

  it('refuses placement on a runner that does not record it', async () => {
    const runner = await createRunner(graph(), { executionProviders: ['cpu'] });
    await expect(runner.placement()).rejects.toThrow(/expected a runner created with recordPlacement: true/);
    await runner.release();
  });
});
