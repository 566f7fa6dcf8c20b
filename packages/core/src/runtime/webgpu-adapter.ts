/**
 * What a WebGPU adapter says about itself, read the same way in Node (the
 * optional `webgpu` package) and in browsers (`navigator.gpu`), and whether
 * it is a software device (a CPU rasterizer such as lavapipe/llvmpipe or
 * SwiftShader), which the `auto` provider never chooses: ONNX Runtime's CPU
 * provider is faster than WebGPU on a device that runs on the CPU.
 */

/** The limits of an adapter that `diffssl doctor` prints. */
const REPORTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

/** `GPUAdapterInfo`: the fields read here. @public */
export interface GpuAdapterInfoLike {
  /** The vendor (`nvidia`, `mesa`). */
  readonly vendor?: string;
  /** The architecture (`ampere`, `software`). */
  readonly architecture?: string;
  /** The device name. */
  readonly device?: string;
  /** The driver's description. */
  readonly description?: string;
  /** True for a fallback (software) adapter, in newer implementations. */
  readonly isFallbackAdapter?: boolean;
}

/** A WebGPU adapter as `requestAdapter()` returns it (the fields read here). @public */
export interface GpuAdapterLike {
  /** `GPUAdapterInfo`. */
  readonly info?: GpuAdapterInfoLike;
  /** Older implementations put the fallback flag on the adapter. */
  readonly isFallbackAdapter?: boolean;
  /** `GPUSupportedLimits`. */
  readonly limits?: object;
}

/**
 * A WebGPU adapter: its name and whether it runs on the CPU.
 *
 * @public
 */
export interface WebGpuAdapterInfo {
  /** The vendor (`nvidia`, `mesa`, ...), or '' when not reported. */
  readonly vendor: string;
  /** The architecture (`ampere`, `software`, ...), or ''. */
  readonly architecture: string;
  /** The device (`llvmpipe-llvm-15-0-6-256-bits-`, ...), or ''. */
  readonly device: string;
  /** The driver's description, or ''. */
  readonly description: string;
  /** True for a software device that runs on the CPU (fallback adapter, architecture `software`, llvmpipe, lavapipe, SwiftShader). */
  readonly software: boolean;
  /** Selected limits (bytes or counts): `maxBufferSize`, `maxStorageBufferBindingSize`, workgroup limits. */
  readonly limits: Readonly<Record<string, number>>;
}

/**
 * What probing for a WebGPU adapter found: an adapter, or why there is none.
 *
 * @public
 */
export type WebGpuAdapterReport = WebGpuAdapterFound | WebGpuAdapterMissing;

/** An adapter was found. @public */
export interface WebGpuAdapterFound {
  /** Always true. */
  readonly found: true;
  /** The adapter. */
  readonly adapter: WebGpuAdapterInfo;
}

/** No adapter is known. @public */
export interface WebGpuAdapterMissing {
  /** Always false. */
  readonly found: false;
  /** Why (no `webgpu` package, no Vulkan/Metal/D3D12 device, ...). */
  readonly reason: string;
}

/** Names of software rasterizers that report themselves as ordinary adapters in some drivers. */
const SOFTWARE_DEVICE = /llvmpipe|lavapipe|swiftshader|software rasterizer|microsoft basic render/i;

/**
 * Reads an adapter's info and limits, and decides whether it is a software
 * (CPU) device.
 *
 * @param adapter - what `GPU.requestAdapter()` resolved to
 * @public
 */
export function describeAdapter(adapter: GpuAdapterLike): WebGpuAdapterInfo {
  const info = adapter.info ?? {};
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const device = info.device ?? '';
  const description = info.description ?? '';
  const fallback = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true;
  const software = fallback || architecture.toLowerCase() === 'software' || SOFTWARE_DEVICE.test(`${device} ${description}`);
  const limits: Record<string, number> = {};
  const source = (adapter.limits ?? {}) as Record<string, unknown>;
  for (const name of REPORTED_LIMITS) {
    const value = source[name];
    if (typeof value === 'number') limits[name] = value;
  }
  return { vendor, architecture, device, description, software, limits };
}

/**
 * A one-line name of an adapter: `llvmpipe-llvm-15-0-6-256-bits- (mesa, software: runs on the CPU)`.
 *
 * @public
 */
export function adapterSummary(adapter: WebGpuAdapterInfo): string {
  const name = adapter.device || adapter.description || 'unnamed adapter';
  const details = [adapter.vendor, adapter.architecture && adapter.architecture !== 'software' ? adapter.architecture : ''].filter((part) => part !== '');
  details.push(adapter.software ? 'software: runs on the CPU' : 'hardware');
  return `${name} (${details.join(', ')})`;
}

/**
 * Why `auto` does not choose WebGPU for this probe result, or undefined when
 * it may (a hardware adapter).
 */
export function autoWebGpuRefusal(report: WebGpuAdapterReport): string | undefined {
  if (!report.found) return report.reason;
  if (report.adapter.software) return `the only adapter is ${adapterSummary(report.adapter)}, slower than the CPU provider`;
  return undefined;
}
