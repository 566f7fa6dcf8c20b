// A relative import: global setup modules do not resolve workspace packages through the source condition.
import { webGpuUnavailable } from '../../testing/src/webgpu.js';

/**
 * Global setup of the normal suite (`pnpm test`): the GPU suite is not part
 * of it, and this prints one line saying so and why, at the end of the run.
 * The WebGPU check runs beside the tests, so it adds no time.
 */
export default function setup(): () => Promise<void> {
  const check = webGpuUnavailable();
  return async () => {
    const reason = await check;
    process.stderr.write(
      reason === undefined
        ? 'GPU suite: not part of pnpm test; a WebGPU adapter is present, run it with pnpm test:gpu\n'
        : `GPU suite skipped: no WebGPU adapter (${reason}); pnpm test:gpu needs one (README, "The GPU suite")\n`,
    );
  };
}
