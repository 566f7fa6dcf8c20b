/**
 * What the Node entry checks before it asks ONNX Runtime for a provider: the
 * CUDA provider library beside onnxruntime-node's binding, and the WebGPU
 * adapter (through the optional `webgpu` package, read in a child process so
 * that Dawn's own messages on stderr never reach the user's terminal). Both
 * feed the `auto` provider and `diffssl doctor`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AutoCandidate } from './runner.js';
import { autoWebGpuRefusal, describeAdapter, type GpuAdapterLike, type WebGpuAdapterReport } from './webgpu-adapter.js';

/** The CUDA provider library's file name on this platform. */
export function cudaLibraryName(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
}

/** How to install the CUDA provider (the README's CUDA section). */
export const CUDA_INSTALL_HINT =
  "reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 and its build script allowed (pnpm: allowBuilds onnxruntime-node: true; see the README's CUDA section)";

/**
 * onnxruntime-node loads the CUDA provider from libraries its install script
 * downloads next to its binding; when they are absent (the default, see the
 * README's CUDA section) say which one and how to install it, instead of
 * letting ONNX Runtime fail. Other providers: undefined (just try them).
 *
 * @public
 */
export function probeNodeProvider(provider: string): string | undefined {
  if (provider !== 'cuda') return undefined;
  try {
    const root = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const binaries = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    const library = cudaLibraryName();
    if (!existsSync(join(binaries, library))) return `the CUDA provider library ${library} is not installed in ${binaries}; ${CUDA_INSTALL_HINT}`;
  } catch {
    return undefined;
  }
  return undefined;
}

/** The child process's program: prints the first adapter's info and limits as JSON, or `null`. */
const ADAPTER_SCRIPT = `
const { create } = await import(process.argv[1]);
const adapter = await create([]).requestAdapter();
let out = null;
if (adapter) {
  const info = adapter.info ?? {};
  const limits = {};
  for (const key in adapter.limits) if (typeof adapter.limits[key] === 'number') limits[key] = adapter.limits[key];
  out = { info: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isFallbackAdapter: info.isFallbackAdapter }, isFallbackAdapter: adapter.isFallbackAdapter, limits };
}
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

/** Reads the adapter with the `webgpu` package in a child process (its native messages stay there). */
async function readAdapter(): Promise<WebGpuAdapterReport> {
  let url: string;
  try {
    url = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return { found: false, reason: "the optional package 'webgpu' (Dawn for Node) is not installed, so no adapter can be read" };
  }
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', ADAPTER_SCRIPT, url], { timeout: 30_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) {
        const detail =
          `${stderr}`
            .trim()
            .split('\n')
            .filter((line) => !line.startsWith('Warning:'))
            .at(-1) ?? error.message;
        resolve({ found: false, reason: `reading the adapter failed: ${detail || error.message}` });
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(stdout);
      } catch {
        resolve({ found: false, reason: `reading the adapter printed no JSON: ${stdout.slice(0, 200)}` });
        return;
      }
      if (parsed === null) resolve({ found: false, reason: 'no WebGPU adapter found (no Vulkan, Metal or D3D12 device)' });
      else resolve({ found: true, adapter: describeAdapter(parsed as GpuAdapterLike) });
    });
  });
}

let adapterProbe: Promise<WebGpuAdapterReport> | undefined;

/**
 * The WebGPU adapter of this machine, read once per process through the
 * optional `webgpu` package (about 0.1-0.4 s). Without that package, or
 * without an adapter, the report says why.
 *
 * @public
 */
export function probeWebGpuAdapter(): Promise<WebGpuAdapterReport> {
  adapterProbe ??= readAdapter();
  return adapterProbe;
}

/** Where the `auto` candidates get their facts (tests inject fakes). */
export interface NodeProbes {
  /** Why a provider cannot work before ORT is asked (default {@link probeNodeProvider}). */
  readonly provider: (provider: string) => string | undefined;
  /** The WebGPU adapter (default {@link probeWebGpuAdapter}). */
  readonly adapter: () => Promise<WebGpuAdapterReport>;
}

/** The real probes. */
export const NODE_PROBES: NodeProbes = { provider: probeNodeProvider, adapter: probeWebGpuAdapter };

/**
 * What `auto` tries in Node: CUDA when its library is installed, WebGPU on a
 * hardware adapter only, then the CPU.
 */
export function nodeAutoCandidates(probes: NodeProbes = NODE_PROBES): AutoCandidate[] {
  return [
    { provider: 'cuda', check: async () => probes.provider('cuda') },
    { provider: 'webgpu', check: async () => autoWebGpuRefusal(await probes.adapter()) },
    { provider: 'cpu' },
  ];
}
