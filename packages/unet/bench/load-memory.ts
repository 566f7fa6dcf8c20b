/** Child process of the benchmark: loads one checkpoint and reports RSS (JSON on stdout). */
import { readTorchCheckpoint } from '../src/index.js';

const path = process.argv[2];
if (!path) throw new Error('usage: load-memory.ts <checkpoint.pt>');
const baseline = process.memoryUsage().rss;
let peak = baseline;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
const start = performance.now();
const tensors = await readTorchCheckpoint(path);
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);
process.stdout.write(JSON.stringify({ baseline, peak, seconds: (performance.now() - start) / 1000, tensors: tensors.size }));
