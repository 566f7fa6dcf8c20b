/**
 * The built page in headless Chromium (Debian's `chromium`, driven by
 * playwright-core; no browser is downloaded), twice: once with WebGPU on a
 * software device (Chromium's bundled SwiftShader) and once without WebGPU
 * (WASM). Each time it checks the provider the page chose, and that the page
 * is cross-origin isolated with ORT's WASM on more than one thread; it
 * classifies the shipped samples, and every prediction and probability equals
 * what the Node pipeline (sharp decoding, the eval batch preprocessing,
 * onnxruntime-node on the CPU) computes for the same image and model, most of
 * them correct; it trains a linear and an attention head in the tab on that
 * provider, whose losses fall and whose held-out accuracy is well above
 * chance; it saves a screenshot and prints the page's timings.
 *
 * Run by `pnpm test:e2e`, which builds the page first (`vite build` and the
 * bundle check). Chromium: `CHROMIUM_PATH`, default /usr/bin/chromium.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRunner, type HostTensor, type Runner } from '@diffssl/core';
import { arrayDataset, decodeImage, loadBatch } from '@diffssl/eval';
import { classifierFeeds, type ExportedClassifierInfo } from '@diffssl/eval/classifier';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CROSS_ORIGIN_ISOLATION_HEADERS } from '../../scripts/headers.js';
import type { SampleEntry } from '../../src/assets.js';
import type { PageState } from '../../src/main.js';
import { wasmThreads } from '../../src/ort-setup.js';
import { tabTrainingSettingsText } from '../../src/tab-training.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = `${root}dist/`;
const generated = `${dist}generated/`;
const results = `${root}test-results/`;
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The machine has no network: without these flags Chromium stalls on background requests.
const baseArgs = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** One Chromium configuration the page is tested in, the provider it must choose there, and the tab's work. */
interface BrowserRun {
  provider: 'webgpu' | 'wasm';
  title: string;
  args: string[];
  /** The page's URL options (`src/page-options.ts`). */
  query: string;
  /** The tab's training and held-out images (of 320 and 160), and the attention head's epochs. */
  tab: { train: number; test: number; attentionEpochs: number };
}

const RUNS: BrowserRun[] = [
  {
    provider: 'webgpu',
    title: 'WebGPU on a software device (SwiftShader)',
    // WebGPU in headless Chromium without a GPU: Vulkan through ANGLE, on the SwiftShader device Chromium ships
    // (libvk_swiftshader.so beside the browser), which --enable-unsafe-swiftshader allows for WebGPU.
    args: [...baseArgs, '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=vulkan', '--enable-unsafe-swiftshader'],
    // SwiftShader runs WebGPU on the CPU, about 20 times slower than WASM here: the tab extracts 160 of its 480
    // images (on Node's CPU these give the linear head 72 % and the attention head, over 4 epochs, 39 % held out).
    // SwiftShader is a software (fallback) adapter, which the page never picks by itself: ?provider=webgpu asks for it.
    query: '?provider=webgpu&tabTrain=96&tabTest=64',
    tab: { train: 96, test: 64, attentionEpochs: 4 },
  },
  {
    provider: 'wasm',
    title: 'without WebGPU (WASM)',
    args: [...baseArgs, '--disable-gpu'],
    query: '',
    tab: { train: 320, test: 160, attentionEpochs: 2 },
  },
];
const TOLERANCE = 1e-4;

let server: PreviewServer;
let url: string;

beforeAll(async () => {
  if (!existsSync(`${dist}index.html`) || !existsSync(`${generated}classifier.onnx`)) {
    throw new Error(`e2e: the built page is missing under ${dist}; run 'pnpm --filter @diffssl/web-example build' (pnpm test:e2e does)`);
  }
  if (!existsSync(chromiumPath))
    throw new Error(`e2e: no Chromium at ${chromiumPath}; install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  // Served as vite.config.ts serves it: cross-origin isolated.
  server = await preview({
    root,
    configFile: false,
    base: './',
    preview: { port: 0, host: '127.0.0.1', open: false, headers: { ...CROSS_ORIGIN_ISOLATION_HEADERS } },
    logLevel: 'warn',
  });
  const local = server.resolvedUrls?.local[0];
  if (!local) throw new Error('e2e: vite preview reported no URL');
  url = local;
});

afterAll(async () => {
  await server?.close();
});

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe.each(RUNS)('the web example in headless Chromium, $title', ({ provider, args, query, tab }) => {
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const timings: Record<string, number | string | boolean> = {};
  const pageState = () => page.evaluate(() => JSON.parse(JSON.stringify(window.diffsslPage)) as PageState);

  beforeAll(async () => {
    // A fresh profile for each run (no GPU or shader cache carried over).
    profile = await mkdtemp(join(tmpdir(), `e2e-chromium-${provider}-`));
    context = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args, viewport: { width: 1100, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
    });
    await page.goto(`${url}${query}`);
    await page.waitForFunction(() => window.diffsslPage?.classifierReady || window.diffsslPage?.error !== undefined, null, { timeout: 180_000 });
  });

  afterAll(async () => {
    await mkdir(results, { recursive: true });
    await writeFile(`${results}timings-${provider}.json`, `${JSON.stringify(timings, null, 2)}\n`);
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it(`loads the exported classifier on onnxruntime-web, on ${provider}, cross-origin isolated with several WASM threads`, async () => {
    const state = await pageState();
    expect(state.error).toBeUndefined();
    expect(state.classifierReady).toBe(true);
    const runtime = state.runtime!;
    expect(runtime.webgpu.available, JSON.stringify(runtime.webgpu)).toBe(provider === 'webgpu');
    expect(runtime.provider).toBe(provider);
    expect(state.model!.provider).toBe(provider);
    expect(state.model!.providerNotes).toEqual([]);
    expect(await page.locator('#model-status').textContent()).toContain(`on ${provider}`);
    expect(await page.locator('#runtime').textContent()).toContain(`Runtime: ${provider};`);
    // Served with COOP + COEP: isolated, so ORT keeps the threads it was given (it drops to 1 where it cannot run them).
    expect(runtime.crossOriginIsolated).toBe(true);
    expect(runtime.threads).toBe(wasmThreads(true, runtime.cores));
    expect(state.model!.wasmThreads).toBe(runtime.threads);
    if (runtime.cores > 1) expect(state.model!.wasmThreads).toBeGreaterThan(1);
    Object.assign(timings, {
      provider: state.model!.provider,
      ...(runtime.webgpu.available
        ? { adapter: `${runtime.webgpu.adapter.vendor} ${runtime.webgpu.adapter.architecture}`, fallbackAdapter: runtime.webgpu.adapter.isFallbackAdapter }
        : {}),
      crossOriginIsolated: runtime.crossOriginIsolated,
      wasmThreads: state.model!.wasmThreads,
      modelBytes: state.model!.bytes,
      modelLoadMs: state.model!.loadMs,
      modelDownloadMs: state.model!.fetchMs,
      sessionCreateMs: state.model!.sessionMs,
    });
  });

  it('classifies every shipped sample as the Node pipeline does (same class, probabilities within 1e-4), most of them correctly', async () => {
    const info = JSON.parse(await readFile(`${generated}classifier.json`, 'utf8')) as ExportedClassifierInfo;
    const samples = JSON.parse(await readFile(`${generated}samples.json`, 'utf8')) as SampleEntry[];
    expect(samples.length).toBeGreaterThanOrEqual(5);
    const runner: Runner = await createRunner(await readFile(`${generated}classifier.onnx`), { executionProviders: ['cpu'] });
    const pageMs: number[] = [];
    let correct = 0;
    let worstOverall = 0;
    try {
      for (const [n, sample] of samples.entries()) {
        await page.click(`#samples button[data-file="${sample.file}"]`);
        await page.waitForFunction((count) => window.diffsslPage.classifications === count || window.diffsslPage.error !== undefined, n + 1, {
          timeout: 300_000,
        });
        const state = await pageState();
        expect(state.error).toBeUndefined();
        const shown = state.last!;
        expect(shown.source).toBe(sample.file);
        pageMs.push(shown.ms);

        // The Node pipeline: decode with sharp, preprocess with the eval batches, run on onnxruntime-node.
        const decoded = await decodeImage(await readFile(`${generated}${sample.file}`), sample.file);
        expect(shown.gray).toEqual(Array.from(decoded.data));
        const dataset = arrayDataset({
          images: decoded.reshape([1, ...decoded.shape]) as HostTensor<'uint8'>,
          labels: [sample.label],
          classes: info.classNames,
        });
        const { images } = await loadBatch(dataset, [0], { channels: info.channels as 1 | 3 });
        const expected = (await runner.run(classifierFeeds(info, images))).probabilities!.toArray();
        const worst = Math.max(...expected.map((p, k) => Math.abs(p - shown.probabilities[k]!)));
        expect(worst, `${sample.file}: largest probability difference`).toBeLessThanOrEqual(TOLERANCE);
        worstOverall = Math.max(worstOverall, worst);
        const expectedClass = expected.indexOf(Math.max(...expected));
        expect(shown.predicted.index).toBe(expectedClass);
        expect(await page.locator('#prediction').textContent()).toContain(info.classNames[expectedClass]!);
        if (expectedClass === sample.label) correct++;
      }
    } finally {
      await runner.release();
    }
    Object.assign(timings, {
      classifyFirstMs: pageMs[0]!,
      classifyMedianMs: median(pageMs.slice(1)),
      samplesCorrect: `${correct}/${samples.length}`,
      largestProbabilityDifference: worstOverall,
    });
    // The samples are one test image of each class, so a constant answer gets one right and guessing one in ten;
    // the shipped GD(L) head (about 80 % top-1 on FM-10k) gets most of them (P(at least 6 of 10 by guessing) < 2e-4).
    expect(new Set(samples.map((sample) => sample.label)).size).toBe(samples.length);
    expect(correct, `${correct} of ${samples.length} samples classified correctly`).toBeGreaterThanOrEqual(Math.ceil(0.6 * samples.length));
  });

  it('classifies an uploaded file as the same image picked from the samples', async () => {
    const sample = (JSON.parse(await readFile(`${generated}samples.json`, 'utf8')) as SampleEntry[])[1]!;
    await page.click(`#samples button[data-file="${sample.file}"]`);
    await page.waitForFunction((file) => window.diffsslPage.last?.source === file, sample.file, { timeout: 300_000 });
    const picked = (await pageState()).last!;
    const before = (await pageState()).classifications;
    await page.uncheck('#invert');
    await page.setInputFiles('#upload', `${generated}${sample.file}`);
    await page.waitForFunction((count) => window.diffsslPage.classifications === count || window.diffsslPage.error !== undefined, before + 1, {
      timeout: 300_000,
    });
    const uploaded = (await pageState()).last!;
    expect(uploaded.source).toBe(sample.file.split('/').at(-1));
    expect(uploaded.gray).toEqual(picked.gray);
    expect(uploaded.probabilities).toEqual(picked.probabilities);
  });

  it('extracts features and trains a linear and an attention head in the tab: the losses fall and the held-out accuracy, well above chance, is shown', async () => {
    await page.fill('#epochs', '8');
    await page.selectOption('#head', 'linear');
    await page.click('#train-button');
    await page.waitForFunction(() => window.diffsslPage.training?.head === 'linear' && ['done', 'error'].includes(window.diffsslPage.training.state), null, {
      timeout: 900_000,
    });
    const { training } = await pageState();
    expect(training!.error).toBeUndefined();
    const result = training!.result!;
    expect(training!.extraction!.provider).toBe(provider);
    expect(training!.extraction!.images).toBe(tab.train + tab.test);
    expect(result.heldOut).toBe(tab.test);
    expect(result.provider).toBe(provider);
    expect(training!.losses).toHaveLength(result.steps);
    expect(result.epochLosses).toHaveLength(8);
    expect(result.epochLosses.at(-1)!).toBeLessThan(0.7 * result.epochLosses[0]!);
    // Ten classes: chance is 10%.
    expect(result.accuracy).toBeGreaterThan(0.3);
    expect(await page.locator('#train-result').textContent()).toContain(`Held-out accuracy: ${(100 * result.accuracy).toFixed(1)}%`);
    expect(await page.locator('#loss-curve polyline').count()).toBe(1);
    // The tab's settings are labelled as its own (they are not the protocols').
    expect(await page.locator('#train-settings').textContent()).toBe(tabTrainingSettingsText());
    Object.assign(timings, {
      tabImages: training!.extraction!.images,
      tabDownloadMs: training!.downloadMs!,
      extractionMs: training!.extraction!.ms,
      extractionSessionMs: training!.extraction!.sessionMs,
      extractionImagesPerSecond: training!.extraction!.imagesPerSecond,
      linearSteps: result.steps,
      linearStepsPerSecond: result.stepsPerSecond,
      linearHeldOutAccuracy: result.accuracy,
    });

    await mkdir(results, { recursive: true });
    const screenshot = `${results}web-example-${provider}.png`;
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`e2e: screenshot saved to ${screenshot}`);

    // The attention head on the features already extracted (the steps/s figure of a heavier head).
    await page.fill('#epochs', String(tab.attentionEpochs));
    await page.selectOption('#head', 'attention');
    await page.click('#train-button');
    await page.waitForFunction(() => window.diffsslPage.training?.head === 'attention' && ['done', 'error'].includes(window.diffsslPage.training.state), null, {
      timeout: 900_000,
    });
    const attention = (await pageState()).training!;
    expect(attention.error).toBeUndefined();
    expect(attention.result!.provider).toBe(provider);
    // It trained: the last epoch's mean loss is below the first's, and the held-out accuracy is well above the
    // 10 % of chance (P(at least 25 % of 160 by guessing) < 1e-6, of 64 < 1e-3); Node gives 2.17 -> 1.62 and 41 %
    // (320 and 160 images, 2 epochs), and 2.29 -> 1.47 and 39 % (96 and 64, 4 epochs).
    expect(attention.result!.epochLosses).toHaveLength(tab.attentionEpochs);
    expect(attention.result!.epochLosses.at(-1)!).toBeLessThan(0.9 * attention.result!.epochLosses[0]!);
    expect(attention.result!.accuracy).toBeGreaterThanOrEqual(0.25);
    expect(await page.locator('#train-result').textContent()).toContain(`Held-out accuracy: ${(100 * attention.result!.accuracy).toFixed(1)}%`);
    Object.assign(timings, {
      attentionSteps: attention.result!.steps,
      attentionStepsPerSecond: attention.result!.stepsPerSecond,
      attentionHeldOutAccuracy: attention.result!.accuracy,
    });
  });

  it('raised no page error', () => {
    expect(pageErrors).toEqual([]);
    const show = (value: number | string | boolean) =>
      typeof value !== 'number' ? String(value) : Math.abs(value) < 0.01 && value !== 0 ? value.toExponential(2) : String(Number(value.toFixed(3)));
    const lines = Object.entries(timings).map(([key, value]) => `  ${key}: ${show(value)}`);
    console.log(`e2e: page timings (headless Chromium, ${provider}):\n${lines.join('\n')}`);
  });
});
