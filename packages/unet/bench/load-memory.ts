/**
 * Child process of the benchmark: loads one checkpoint (and, when asked,
 * builds the extraction model from it and writes it to disk with external
 * data, as `createFeatureExtractor` does for large models) and reports the
 * peak RSS growth over the baseline (JSON on stdout).
 *
 * usage: load-memory.ts <checkpoint> load|build-float32|build-float16 [flags.json]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadCheckpoint } from '../src/index.js';
import { buildModelSource } from '../src/extractor.node.js';

const [path, mode = 'load', flagsFile] = process.argv.slice(2);
if (!path) throw new Error('usage: load-memory.ts <checkpoint> load|build-float32|build-float16 [flags.json]');

/** Current RSS, and the peak since the last reset: Linux's VmHWM (exact, sync work included), else sampled. */
const memory = (() => {
  const status = () => readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status())![1]) * 1024;
  try {
    writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
    return { rss: () => field('VmRSS'), peak: () => field('VmHWM'), stop: () => undefined };
  } catch {
    let peak = process.memoryUsage.rss();
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
    return { rss: () => process.memoryUsage.rss(), peak: () => Math.max(peak, process.memoryUsage.rss()), stop: () => clearInterval(sampler) };
  }
})();

const baseline = memory.rss();
const start = performance.now();
let tensors = 0;
let removeModel: (() => Promise<void>) | undefined;
if (mode === 'load') {
  tensors = (await loadCheckpoint(path)).size;
} else {
  const dtype = mode === 'build-float16' ? 'float16' : 'float32';
  const config = JSON.parse(readFileSync(flagsFile!, 'utf8')) as never;
  const built = await buildModelSource({ checkpoint: path, config, blocks: [24], timesteps: [150], dtype, externalDataThreshold: 0 }, dtype, undefined);
  removeModel = built.cleanup;
}
const seconds = (performance.now() - start) / 1000;
const peak = memory.peak();
memory.stop();
await removeModel?.();
process.stdout.write(JSON.stringify({ baseline, peak, seconds, tensors }));
