import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Whether onnxruntime-node's WebGPU provider works on this machine (a Vulkan
 * device that Dawn accepts, such as Mesa 25's lavapipe): undefined when a
 * one-node graph ran on it and gave the right answer, otherwise why not, in
 * one line. The check runs in a child process (about a second).
 */
export async function webGpuUnavailable(): Promise<string | undefined> {
  const script = fileURLToPath(new URL('./webgpu-probe.ts', import.meta.url));
  const output = await new Promise<string>((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=@diffssl/source', '--import', 'tsx', script],
      { timeout: 120_000, cwd: fileURLToPath(new URL('../../..', import.meta.url)) },
      (error, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        if (line.startsWith('{')) resolve(line);
        else
          resolve(
            JSON.stringify({
              ok: false,
              reason: `the WebGPU probe failed (${error?.message.split('\n')[0] ?? 'no output'}) ${stderr.trim().split('\n').pop() ?? ''}`.trim(),
            }),
          );
      },
    );
  });
  const result = JSON.parse(output) as { ok: boolean; reason?: string };
  return result.ok ? undefined : (result.reason ?? 'unknown reason');
}
