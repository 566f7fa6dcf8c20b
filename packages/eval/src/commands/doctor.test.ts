/**
 * `diffssl doctor`'s report on made-up machines: a fake ORT binding decides
 * which providers open, a fake adapter source says what WebGPU device there
 * is, and fake `/proc/cpuinfo` text and cache folders give the rest, so the
 * expected lines are written out here and do not depend on this machine.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeAdapter } from '@diffssl/core';
import { fakeOrt } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { cpuFeatures, doctor, formatDoctor } from './doctor.js';

const SAPPHIRE_RAPIDS = `processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni amx_bf16 amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni amx_bf16 amx_tile amx_int8
processor\t: 2
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni amx_bf16 amx_tile amx_int8
`;
const CUDA_LIBRARY =
  'the CUDA provider library libonnxruntime_providers_cuda.so is not installed in /x; reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12';
const A100 = describeAdapter({
  info: { vendor: 'nvidia', architecture: 'ampere', device: 'NVIDIA A100-SXM4-80GB', description: 'D3D12 driver 550' },
  limits: { maxBufferSize: 68719476736, maxStorageBufferBindingSize: 4294967292 },
});
const LAVAPIPE = describeAdapter({
  info: { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true },
  limits: { maxBufferSize: 4294967295 },
});

/** A feature cache of 3 files (1000 + 1500 + 48 bytes) and one leftover temporary model folder. */
function folders() {
  const root = mkdtempSync(join(tmpdir(), 'diffssl-doctor-test-'));
  const cache = join(root, 'features');
  mkdirSync(join(cache, 'key-a'), { recursive: true });
  writeFileSync(join(cache, 'key-a', 'x.bin'), new Uint8Array(1000));
  writeFileSync(join(cache, 'key-a', 'y.bin'), new Uint8Array(1500));
  writeFileSync(join(cache, 'index.json'), new Uint8Array(48));
  const temporary = join(root, 'tmp');
  mkdirSync(join(temporary, 'diffssl-model-abc'), { recursive: true });
  writeFileSync(join(temporary, 'diffssl-model-abc', 'model.onnx.data'), new Uint8Array(3 << 20));
  mkdirSync(join(temporary, 'unrelated'));
  return { cache, temporary };
}

describe('diffssl doctor', () => {
  it('reports a CUDA library that is missing, a hardware WebGPU adapter that auto chooses, AVX-512/VNNI/AMX, threads and cache sizes', async () => {
    const { cache, temporary } = folders();
    const report = await doctor({
      binding: fakeOrt({ cuda: true, webgpu: true, cpu: true }).binding,
      ortVersion: '1.30.0',
      probe: (provider) => (provider === 'cuda' ? CUDA_LIBRARY : undefined),
      adapter: async () => ({ found: true, adapter: A100 }),
      cpuinfo: async () => SAPPHIRE_RAPIDS,
      availableThreads: 3,
      featureCache: cache,
      temporaryFolder: temporary,
      nodeVersion: 'v20.20.2',
    });
    expect(formatDoctor(report).split('\n')).toEqual([
      'Node v20.20.2',
      'ONNX Runtime (onnxruntime-node) 1.30.0',
      '',
      'Execution providers:',
      `  cuda    unavailable: ${CUDA_LIBRARY}`,
      '  webgpu  available: works',
      '          adapter: NVIDIA A100-SXM4-80GB (nvidia, ampere, hardware); type: hardware',
      '          driver: D3D12 driver 550',
      '          limits: maxBufferSize 68719476736, maxStorageBufferBindingSize 4294967292',
      '  cpu     available: works',
      '  onnxruntime-node lists: cpu, webgpu, cuda (not bundled)',
      `  auto: webgpu ('webgpu' chosen by auto (auto skipped cuda: ${CUDA_LIBRARY}))`,
      '',
      'CPU: Intel(R) Xeon(R) Platinum 8480+',
      '  AVX2 yes, AVX-512 yes, VNNI yes, AMX yes',
      "Threads: 3 available to this process; ONNX Runtime's default: 2 (one per physical core); --threads sets it",
      '',
      'Caches:',
      `  feature cache ($DIFFSSL_CACHE; --cache): ${cache}: 2.5 KiB in 3 files`,
      `  temporary model folder (left by a killed run; safe to delete): ${join(temporary, 'diffssl-model-abc')}: 3.0 MiB in 1 files`,
      '',
    ]);
  });

  it('reports a CUDA device that fails, a software adapter that auto skips, no AVX-512, and a cache not created yet; --json carries the same', async () => {
    const ort = fakeOrt({ cuda: 'CUDA failure 100: no CUDA-capable device is detected\nstack', webgpu: true, cpu: true });
    const report = await doctor({
      binding: ort.binding,
      ortVersion: '1.30.0',
      probe: () => undefined,
      adapter: async () => ({ found: true, adapter: LAVAPIPE }),
      cpuinfo: async () => 'model name\t: AMD EPYC\nflags\t\t: fpu avx avx2\n',
      availableThreads: 2,
      featureCache: join(tmpdir(), 'diffssl-doctor-no-such-folder'),
      temporaryFolder: join(tmpdir(), 'diffssl-doctor-no-such-folder'),
      nodeVersion: 'v22.0.0',
    });
    const printed = formatDoctor(report).split('\n');
    expect(printed.slice(4, 12)).toEqual([
      '  cuda    unavailable: CUDA failure 100: no CUDA-capable device is detected',
      '  webgpu  available: works, on a software adapter (runs on the CPU): auto never chooses it; name it with --provider webgpu',
      '          adapter: llvmpipe-llvm-15 (mesa, software: runs on the CPU); type: CPU (software)',
      '          driver: llvmpipe: Mesa 25.0.7',
      '          limits: maxBufferSize 4294967295',
      '  cpu     available: works',
      '  onnxruntime-node lists: cpu, webgpu, cuda (not bundled)',
      "  auto: cpu ('cpu' chosen by auto (auto skipped cuda: CUDA failure 100: no CUDA-capable device is detected; webgpu: the only adapter is llvmpipe-llvm-15 (mesa, software: runs on the CPU), slower than the CPU provider))",
    ]);
    expect(printed.slice(13)).toEqual([
      'CPU: AMD EPYC',
      '  AVX2 yes, AVX-512 no, VNNI no, AMX no',
      "Threads: 2 available to this process; ONNX Runtime's default: one per physical core; --threads sets it",
      '',
      'Caches:',
      `  feature cache ($DIFFSSL_CACHE; --cache): ${join(tmpdir(), 'diffssl-doctor-no-such-folder')}: not created yet`,
      '',
    ]);
    // every provider was asked under strict: cuda, webgpu, cpu, then auto's choice (cuda again, then cpu)
    expect(ort.tried()).toEqual(['cuda', 'webgpu', 'cpu', 'cuda', 'cpu']);
    const json = JSON.parse(JSON.stringify(report)) as typeof report;
    expect(json.runtime.providers.map((p) => [p.name, p.available])).toEqual([
      ['cuda', false],
      ['webgpu', true],
      ['cpu', true],
    ]);
    expect(json.cpu).toMatchObject({ avx512: false, vnni: false, amx: false, known: true });
  });

  it('says why there is no adapter, and that CPU features are unknown without /proc/cpuinfo', async () => {
    const report = await doctor({
      binding: fakeOrt({ cpu: true, webgpu: 'no adapter' }).binding,
      ortVersion: '1.30.0',
      probe: (provider) => (provider === 'cuda' ? CUDA_LIBRARY : undefined),
      adapter: async () => ({ found: false, reason: "the optional package 'webgpu' (Dawn for Node) is not installed, so no adapter can be read" }),
      cpuinfo: async () => undefined,
      availableThreads: 8,
      featureCache: join(tmpdir(), 'diffssl-doctor-no-such-folder'),
      temporaryFolder: join(tmpdir(), 'diffssl-doctor-no-such-folder'),
    });
    const printed = formatDoctor(report);
    expect(printed).toContain(
      "  webgpu  unavailable: the optional package 'webgpu' (Dawn for Node) is not installed, so no adapter can be read; ONNX Runtime: no adapter\n          adapter: none (the optional package 'webgpu' (Dawn for Node) is not installed, so no adapter can be read)\n",
    );
    expect(printed).toContain('  features unknown (no /proc/cpuinfo)\n');
  });

  it('reads VNNI from avx_vnni alone and counts physical cores across sockets', () => {
    const text = 'physical id\t: 0\ncore id\t: 0\nphysical id\t: 1\ncore id\t: 0\nflags\t: avx2 avx_vnni\n';
    expect(cpuFeatures(text)).toMatchObject({ avx2: true, avx512: false, vnni: true, amx: false, physicalCores: 2 });
  });
});
