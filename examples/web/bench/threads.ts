/**
 * onnxruntime-web's WASM threads in the built page, before and after
 * cross-origin isolation: headless Chromium (no WebGPU, so WASM) loads the
 * page served without and with the COOP/COEP headers, and reports the model
 * load time (download and session) and the tab's feature extraction rate (480
 * images through the U-Net to block 10), for
 *
 * - `not isolated`: no headers, so 1 thread (what every page got before);
 * - `isolated, 1 thread`: the headers, `?threads=1` (isolation alone);
 * - `isolated, N threads`: the headers and the page's default thread count.
 *
 * Each round runs the three in turn, each in a fresh browser; the table gives
 * each configuration's median over the rounds and its ratio to `not isolated`.
 * Ratios from one run compare like with like on a shared machine; the absolute
 * figures move with the machine's load.
 *
 * Usage: `pnpm --filter @diffssl/web-example bench` (builds the page first).
 * `BENCH_ROUNDS` (default 2); `CHROMIUM_PATH` (default /usr/bin/chromium).
 * Writes `test-results/bench-threads.json`.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { CROSS_ORIGIN_ISOLATION_HEADERS } from '../scripts/headers.js';
import type { PageState } from '../src/main.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`BENCH_ROUNDS: expected a positive integer; found '${process.env.BENCH_ROUNDS}'`);
const args = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

interface Config {
  name: string;
  isolated: boolean;
  query: string;
}
const CONFIGS: Config[] = [
  { name: 'not isolated', isolated: false, query: '?provider=wasm' },
  { name: 'isolated, 1 thread', isolated: true, query: '?provider=wasm&threads=1' },
  { name: 'isolated, default threads', isolated: true, query: '?provider=wasm' },
];

interface Sample {
  crossOriginIsolated: boolean;
  threads: number;
  modelLoadMs: number;
  modelSessionMs: number;
  images: number;
  extractionMs: number;
  extractionSessionMs: number;
  /** Images per second over the whole extraction (U-Net session opened, then every batch). */
  imagesPerSecond: number;
  /** Images per second over the batches alone. */
  batchImagesPerSecond: number;
}

async function serve(isolated: boolean): Promise<{ server: PreviewServer; url: string }> {
  const server = await preview({
    root,
    configFile: false,
    base: './',
    preview: { port: 0, host: '127.0.0.1', open: false, headers: isolated ? { ...CROSS_ORIGIN_ISOLATION_HEADERS } : {} },
    logLevel: 'warn',
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('bench: vite preview reported no URL');
  return { server, url };
}

async function measure(url: string): Promise<Sample> {
  const profile = await mkdtemp(join(tmpdir(), 'bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args });
  try {
    const page = await context.newPage();
    const state = () => page.evaluate(() => JSON.parse(JSON.stringify(window.diffsslPage)) as PageState);
    await page.goto(url);
    await page.waitForFunction(() => window.diffsslPage?.classifierReady || window.diffsslPage?.error !== undefined, null, { timeout: 600_000 });
    const loaded = await state();
    if (loaded.error !== undefined) throw new Error(`bench: the page failed: ${loaded.error}`);
    // One epoch of the linear head: the extraction of the tab's 480 images is what is timed.
    await page.fill('#epochs', '1');
    await page.selectOption('#head', 'linear');
    await page.click('#train-button');
    await page.waitForFunction(() => ['done', 'error'].includes(window.diffsslPage.training?.state ?? ''), null, { timeout: 1_200_000 });
    const { training } = await state();
    if (training?.state !== 'done' || !training.extraction) throw new Error(`bench: the tab failed: ${training?.error ?? 'no extraction'}`);
    const { images, ms, sessionMs, imagesPerSecond } = training.extraction;
    return {
      crossOriginIsolated: loaded.runtime!.crossOriginIsolated,
      threads: loaded.model!.wasmThreads,
      modelLoadMs: loaded.model!.loadMs,
      modelSessionMs: loaded.model!.sessionMs,
      images,
      extractionMs: ms,
      extractionSessionMs: sessionMs,
      imagesPerSecond,
      batchImagesPerSecond: images / ((ms - sessionMs) / 1000),
    };
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function main(): Promise<void> {
  if (!existsSync(`${root}dist/index.html`)) throw new Error(`bench: no built page under ${root}dist; run 'pnpm --filter @diffssl/web-example build'`);
  if (!existsSync(chromiumPath))
    throw new Error(`bench: no Chromium at ${chromiumPath}; install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  const servers = { plain: await serve(false), isolated: await serve(true) };
  const samples = new Map<string, Sample[]>(CONFIGS.map((config) => [config.name, []]));
  const loadBefore = loadavg()[0]!;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const config of CONFIGS) {
        const sample = await measure(`${(config.isolated ? servers.isolated : servers.plain).url}${config.query}`);
        if (sample.crossOriginIsolated !== config.isolated)
          throw new Error(`bench: ${config.name}: expected crossOriginIsolated ${config.isolated}; found ${sample.crossOriginIsolated}`);
        samples.get(config.name)!.push(sample);
        console.log(
          `bench: round ${round + 1}/${rounds}, ${config.name}: ${sample.threads} thread(s), model load ${sample.modelLoadMs.toFixed(0)} ms, ` +
            `extraction ${sample.imagesPerSecond.toFixed(1)} images/s (${sample.batchImagesPerSecond.toFixed(1)} without the session)`,
        );
      }
    }
  } finally {
    await servers.plain.server.close();
    await servers.isolated.server.close();
  }
  const summary = CONFIGS.map((config) => {
    const list = samples.get(config.name)!;
    return {
      config: config.name,
      threads: list[0]!.threads,
      modelLoadMs: median(list.map((s) => s.modelLoadMs)),
      modelSessionMs: median(list.map((s) => s.modelSessionMs)),
      imagesPerSecond: median(list.map((s) => s.imagesPerSecond)),
      batchImagesPerSecond: median(list.map((s) => s.batchImagesPerSecond)),
    };
  });
  const base = summary[0]!;
  const rows = summary.map(
    (s) =>
      `| ${s.config} | ${s.threads} | ${s.modelLoadMs.toFixed(0)} (${(s.modelLoadMs / base.modelLoadMs).toFixed(2)}x) | ` +
      `${s.imagesPerSecond.toFixed(1)} (${(s.imagesPerSecond / base.imagesPerSecond).toFixed(2)}x) | ` +
      `${s.batchImagesPerSecond.toFixed(1)} (${(s.batchImagesPerSecond / base.batchImagesPerSecond).toFixed(2)}x) |`,
  );
  console.log(
    [
      `\nbench: headless Chromium, WASM, ${cpus().length} cores, load average ${loadBefore.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}, median of ${rounds} round(s)`,
      '| page | WASM threads | model load, ms | extraction, images/s | extraction without the session, images/s |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
    ].join('\n'),
  );
  await mkdir(`${root}test-results`, { recursive: true });
  await writeFile(
    `${root}test-results/bench-threads.json`,
    `${JSON.stringify({ cores: cpus().length, rounds, summary, samples: Object.fromEntries(samples) }, null, 2)}\n`,
  );
}

await main();
