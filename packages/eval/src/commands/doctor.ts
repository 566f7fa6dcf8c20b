/**
 * `diffssl doctor`: what this machine offers DiffSSL. Node and ONNX Runtime
 * versions, each execution provider (available, or why not and how to fix
 * it), what `auto` picks, the CPU's vector features, threads, and the cache
 * folders with their sizes. Every probe is injectable, so its output is
 * tested without depending on the machine.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapterSummary, type DiagnoseOptions, diagnoseProviders, type ProvidersDiagnosis } from '@diffssl/core';
import type { Command } from 'commander';
import { defaultCacheDirectory } from '../pipeline/run.js';

/** The CPU's vector features that matter to ONNX Runtime's kernels. @public */
export interface CpuFeatures {
  /** The model name (`/proc/cpuinfo`'s `model name`), or '' when unknown. */
  readonly model: string;
  /** AVX2. */
  readonly avx2: boolean;
  /** AVX-512 foundation (`avx512f`). */
  readonly avx512: boolean;
  /** VNNI int8 dot products (`avx512_vnni` or `avx_vnni`). */
  readonly vnni: boolean;
  /** AMX tiles (`amx_tile`, with `amx_int8`/`amx_bf16`). */
  readonly amx: boolean;
  /** The flags were read (false off Linux: no `/proc/cpuinfo`). */
  readonly known: boolean;
  /** Physical cores (distinct `physical id`/`core id` pairs), or undefined when unknown. */
  readonly physicalCores: number | undefined;
}

/**
 * Reads the CPU features from `/proc/cpuinfo`'s text.
 *
 * @param cpuinfo - the file's text, or undefined where there is none
 * @public
 */
export function cpuFeatures(cpuinfo: string | undefined): CpuFeatures {
  if (cpuinfo === undefined)
    return { model: cpus()[0]?.model ?? '', avx2: false, avx512: false, vnni: false, amx: false, known: false, physicalCores: undefined };
  const field = (line: string) => line.slice(line.indexOf(':') + 1).trim();
  const lines = cpuinfo.split('\n');
  const flags = new Set(field(lines.find((line) => /^flags\s*:/.test(line)) ?? ':').split(/\s+/));
  const model = field(lines.find((line) => /^model name\s*:/.test(line)) ?? ':');
  const cores = new Set<string>();
  let physical = '';
  for (const line of lines) {
    if (/^physical id\s*:/.test(line)) physical = field(line);
    if (/^core id\s*:/.test(line)) cores.add(`${physical}/${field(line)}`);
  }
  return {
    model,
    avx2: flags.has('avx2'),
    avx512: flags.has('avx512f'),
    vnni: flags.has('avx512_vnni') || flags.has('avx_vnni'),
    amx: flags.has('amx_tile'),
    known: true,
    physicalCores: cores.size > 0 ? cores.size : undefined,
  };
}

/** A folder and what it holds. @public */
export interface FolderUsage {
  /** What it is for. */
  readonly label: string;
  /** The path. */
  readonly path: string;
  /** Whether it exists. */
  readonly exists: boolean;
  /** Bytes of the files under it. */
  readonly bytes: number;
  /** Files under it. */
  readonly files: number;
}

async function folderUsage(label: string, path: string): Promise<FolderUsage> {
  let bytes = 0;
  let files = 0;
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) {
        bytes += (await stat(full)).size;
        files += 1;
      }
    }
  };
  try {
    await walk(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { label, path, exists: false, bytes: 0, files: 0 };
    throw error;
  }
  return { label, path, exists: true, bytes, files };
}

/** Temporary model folders left behind by killed processes (`diffssl-model-*`, `diffssl-unet-*` in the temp folder). */
async function temporaryLeftovers(folder: string): Promise<FolderUsage[]> {
  let names: string[];
  try {
    names = (await readdir(folder)).filter((name) => /^diffssl-(model|unet)-/.test(name));
  } catch {
    return [];
  }
  return Promise.all(names.sort().map((name) => folderUsage('temporary model folder (left by a killed run; safe to delete)', join(folder, name))));
}

/** What `diffssl doctor` found. @public */
export interface DoctorReport {
  /** Node's version. */
  readonly node: string;
  /** Providers, adapter, `auto`'s choice, ORT version. */
  readonly runtime: ProvidersDiagnosis;
  /** CPU features. */
  readonly cpu: CpuFeatures;
  /** Threads this process may use, and ONNX Runtime's default. */
  readonly threads: DoctorThreads;
  /** The feature cache and leftover temporary folders, with sizes. */
  readonly caches: readonly FolderUsage[];
}

/** Threads, as `diffssl doctor` reports them. @public */
export interface DoctorThreads {
  /** Threads this process may use (`os.availableParallelism()`). */
  readonly available: number;
  /** ONNX Runtime's default intra-op thread count: the physical cores (undefined when unknown). */
  readonly ortDefault: number | undefined;
}

/** Where {@link doctor} gets its facts (each defaults to the real source). @public */
export interface DoctorOptions extends DiagnoseOptions {
  /** `/proc/cpuinfo`'s text (default: read it; undefined where absent). */
  readonly cpuinfo?: () => Promise<string | undefined>;
  /** Threads this process may use (default `os.availableParallelism()`). */
  readonly availableThreads?: number;
  /** The feature cache folder (default `$DIFFSSL_CACHE` or `~/.cache/diffssl/features`). */
  readonly featureCache?: string;
  /** The temporary folder (default `os.tmpdir()`). */
  readonly temporaryFolder?: string;
  /** Node's version (default `process.version`). */
  readonly nodeVersion?: string;
}

/**
 * Gathers what `diffssl doctor` prints.
 *
 * @param options - fakes for tests; every field defaults to the real source
 * @public
 */
export async function doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const runtime = await diagnoseProviders(options);
  const cpuinfo = await (options.cpuinfo ?? (() => readFile('/proc/cpuinfo', 'utf8').catch(() => undefined)))();
  const cpu = cpuFeatures(cpuinfo);
  const caches = [
    await folderUsage('feature cache ($DIFFSSL_CACHE; --cache)', options.featureCache ?? defaultCacheDirectory()),
    ...(await temporaryLeftovers(options.temporaryFolder ?? tmpdir())),
  ];
  return {
    node: options.nodeVersion ?? process.version,
    runtime,
    cpu,
    threads: { available: options.availableThreads ?? availableParallelism(), ortDefault: cpu.physicalCores },
    caches,
  };
}

/** Bytes as `1.5 GiB`. */
function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const yesNo = (value: boolean) => (value ? 'yes' : 'no');

/**
 * The report as the lines `diffssl doctor` prints.
 *
 * @public
 */
export function formatDoctor(report: DoctorReport): string {
  const { runtime, cpu } = report;
  const lines = [`Node ${report.node}`, `ONNX Runtime (onnxruntime-node) ${runtime.ortVersion}`, '', 'Execution providers:'];
  for (const provider of runtime.providers) {
    lines.push(`  ${provider.name.padEnd(7)} ${provider.available ? 'available' : 'unavailable'}: ${provider.detail}`);
    if (provider.name === 'webgpu') {
      if (runtime.adapter.found) {
        const adapter = runtime.adapter.adapter;
        lines.push(`          adapter: ${adapterSummary(adapter)}; type: ${adapter.software ? 'CPU (software)' : 'hardware'}`);
        if (adapter.description) lines.push(`          driver: ${adapter.description}`);
        const limits = Object.entries(adapter.limits).map(([name, value]) => `${name} ${value}`);
        if (limits.length > 0) lines.push(`          limits: ${limits.join(', ')}`);
      } else {
        lines.push(`          adapter: none (${runtime.adapter.reason})`);
      }
    }
  }
  if (runtime.backends.length > 0)
    lines.push(`  onnxruntime-node lists: ${runtime.backends.map(({ name, bundled }) => `${name}${bundled ? '' : ' (not bundled)'}`).join(', ')}`);
  lines.push(`  auto: ${runtime.auto.provider} (${runtime.auto.reason})`, '');
  lines.push(`CPU: ${cpu.model || 'unknown model'}`);
  lines.push(
    cpu.known
      ? `  AVX2 ${yesNo(cpu.avx2)}, AVX-512 ${yesNo(cpu.avx512)}, VNNI ${yesNo(cpu.vnni)}, AMX ${yesNo(cpu.amx)}`
      : '  features unknown (no /proc/cpuinfo)',
  );
  lines.push(
    `Threads: ${report.threads.available} available to this process; ONNX Runtime's default: ${report.threads.ortDefault ?? 'one per physical core'}${report.threads.ortDefault ? ' (one per physical core)' : ''}; --threads sets it`,
    '',
    'Caches:',
  );
  for (const cache of report.caches)
    lines.push(`  ${cache.label}: ${cache.path}: ${cache.exists ? `${size(cache.bytes)} in ${cache.files} files` : 'not created yet'}`);
  return `${lines.join('\n')}\n`;
}

/** Adds `diffssl doctor`. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('what this machine offers: Node and ONNX Runtime versions, each execution provider (or why not), CPU features, threads, caches')
    .option('--json', 'print the report as JSON')
    .action(async (flags: { json?: boolean }) => {
      const report = await doctor();
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report));
    });
}
