// A relative import: global setup modules do not resolve workspace packages through the source condition.
import { webGpuUnavailable } from '../../testing/src/webgpu.js';

/**
 * Global setup of the GPU suite: it fails at once, with the reason, when
 * onnxruntime-node's WebGPU provider finds no adapter (the suite would
 * otherwise test nothing).
 */
export default async function setup(): Promise<void> {
  const reason = await webGpuUnavailable();
  if (reason !== undefined)
    throw new Error(
      `pnpm test:gpu: no WebGPU adapter: ${reason}. Install Mesa 25's Vulkan driver (README, "The GPU suite"): apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`,
    );
  process.stderr.write('pnpm test:gpu: a WebGPU adapter is present; running the GPU suite on the webgpu provider\n');
}
