// The page: classify with the exported model, and train a head in the tab.
import type { AdmUNet, GuidedDiffusionFlags } from '@diffssl/unet';
import { GENERATED, SUBSET_FILE, type SampleEntry } from './assets.js';
import { lossCurveSvg } from './chart.js';
import { classify, fetchOk, loadClassifier, type Classification, type LoadedClassifier } from './classifier.js';
import { configureOrt, executionProviders, type OrtSetup } from './ort-setup.js';
import { pageOptions } from './page-options.js';
import { centerSquare, grayFromRgba } from './pixels.js';
import { protocolKind } from '@diffssl/eval/heads';
import {
  extractTabFeatures,
  readTabData,
  tabSubset,
  TAB_HEAD_KINDS,
  TAB_TRAINING,
  tabTrainingSettingsText,
  trainTabHead,
  unetFromBytes,
  type TabData,
  type TabHeadKind,
  type TabTrainingResult,
} from './tab-training.js';
import type { HostTensor } from '@diffssl/core';

/** What the page did, for people reading the console and for the end-to-end test. */
export interface PageState {
  classifierReady: boolean;
  error?: string;
  /** How onnxruntime-web runs here: cross-origin isolation, WASM threads, the WebGPU probe and the provider chosen. */
  runtime?: OrtSetup;
  model?: {
    provider: string;
    providerNotes: string[];
    bytes: number;
    fetchMs: number;
    sessionMs: number;
    loadMs: number;
    /** `ort.env.wasm.numThreads` once the first session is open: ORT sets it back to 1 where threads cannot run. */
    wasmThreads: number;
  };
  classifications: number;
  last?: {
    source: string;
    gray: number[];
    predicted: { index: number; name: string; probability: number };
    probabilities: number[];
    ms: number;
    provider: string;
  };
  training?: {
    head: TabHeadKind;
    state: 'loading' | 'extracting' | 'training' | 'done' | 'error';
    error?: string;
    losses: number[];
    downloadMs?: number;
    /** The tab's feature extraction: `ms` in all, of which `sessionMs` opening the U-Net's session; `imagesPerSecond` over `ms`. */
    extraction?: { images: number; ms: number; sessionMs: number; imagesPerSecond: number; provider: string };
    result?: Omit<TabTrainingResult, 'losses' | 'predictions' | 'weights'>;
  };
}

declare global {
  interface Window {
    diffsslPage: PageState;
  }
}

const state: PageState = { classifierReady: false, classifications: 0 };
window.diffsslPage = state;

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const base = new URL(GENERATED, document.baseURI).href;
const format = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

let classifier: LoadedClassifier | undefined;
let busy = Promise.resolve();

/** Decodes an image, center-crops it square and draws it at size x size, returning its gray levels. */
async function grayOf(blob: Blob, size: number, invert: boolean): Promise<Uint8Array> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  // Transparent areas become the background Fashion-MNIST has after inversion: black.
  context.fillStyle = invert ? '#fff' : '#000';
  context.fillRect(0, 0, size, size);
  context.imageSmoothingQuality = 'high';
  const { x, y, side } = centerSquare(bitmap.width, bitmap.height);
  context.drawImage(bitmap, x, y, side, side, 0, 0, size, size);
  bitmap.close();
  const gray = grayFromRgba(context.getImageData(0, 0, size, size).data);
  if (invert) for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i]!;
  return gray;
}

function showPreview(gray: Uint8Array, size: number): void {
  const canvas = element<HTMLCanvasElement>('preview');
  canvas.width = size;
  canvas.height = size;
  const image = new ImageData(size, size);
  gray.forEach((v, p) => image.data.set([v, v, v, 255], 4 * p));
  canvas.getContext('2d')!.putImageData(image, 0, 0);
}

function showClassification(result: Classification, source: string, truth?: string): void {
  const best = result.top[0]!;
  const verdict = truth === undefined ? '' : best.name === truth ? ' ✓' : ` (true class: ${truth})`;
  element('prediction').textContent = `${best.name}: ${(100 * best.probability).toFixed(1)}%${verdict}`;
  element('top-classes').innerHTML = result.top
    .map(
      (c) =>
        `<tr><td>${c.name}</td><td>${(100 * c.probability).toFixed(2)}%</td><td><span class="bar" style="width:${Math.max(1, Math.round(160 * c.probability))}px"></span></td></tr>`,
    )
    .join('');
  element('classify-timing').textContent =
    `${source}: classified in ${format(result.ms)} on ${classifier!.provider} (model loaded in ${format(state.model!.loadMs)}).`;
}

async function classifyBlob(blob: Blob, source: string, invert: boolean, truth?: string): Promise<void> {
  if (!classifier) return;
  const { imageSize } = classifier.info;
  const gray = await grayOf(blob, imageSize, invert);
  showPreview(gray, imageSize);
  const result = await classify(classifier, gray);
  state.classifications++;
  state.last = { source, gray: [...gray], predicted: result.top[0]!, probabilities: result.probabilities, ms: result.ms, provider: classifier.provider };
  showClassification(result, source, truth);
}

function run(task: () => Promise<void>): void {
  busy = busy.then(task).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    state.error = message;
    element('classify-timing').innerHTML = `<span class="error">${message}</span>`;
    console.error(error);
  });
}

async function loadSamples(): Promise<void> {
  const samples = (await (await fetchOk(`${base}samples.json`)).json()) as SampleEntry[];
  const gallery = element('samples');
  for (const sample of samples) {
    const button = document.createElement('button');
    button.type = 'button';
    button.title = `${sample.className} (test image ${sample.testIndex})`;
    button.dataset.file = sample.file;
    button.innerHTML = `<img src="${base}${sample.file}" alt="${sample.className}" width="28" height="28" />`;
    button.addEventListener('click', () => {
      for (const other of gallery.querySelectorAll('button')) other.setAttribute('aria-pressed', String(other === button));
      run(async () => {
        const blob = await (await fetchOk(`${base}${sample.file}`)).blob();
        await classifyBlob(blob, sample.file, false, sample.className);
      });
    });
    gallery.append(button);
  }
}

async function loadModel(): Promise<void> {
  const start = performance.now();
  classifier = await loadClassifier(`${base}classifier`);
  const loadMs = performance.now() - start;
  state.model = {
    provider: classifier.provider,
    providerNotes: classifier.providerNotes,
    bytes: classifier.bytes,
    fetchMs: classifier.fetchMs,
    sessionMs: classifier.sessionMs,
    loadMs,
    wasmThreads: classifier.wasmThreads,
  };
  state.classifierReady = true;
  const notes = classifier.providerNotes.length > 0 ? ' (WebGPU failed; see the tooltip)' : '';
  element('model-status').title = classifier.providerNotes.join('\n');
  element('model-status').textContent =
    `Classifier ready: ${classifier.info.protocol} head on block ${String(classifier.info.settings.blocks)} at t=${classifier.info.timesteps.join(',')}, ` +
    `${(classifier.bytes / 1e6).toFixed(1)} MB, loaded in ${format(loadMs)} (download ${format(classifier.fetchMs)}, session ${format(classifier.sessionMs)}) ` +
    `on ${classifier.provider}${notes}. Click a sample or upload an image.`;
}

/**
 * One line on how ORT runs in this tab: the provider, the WebGPU adapter or
 * why there is none, and the WASM threads (those in use once a session is
 * open, else those asked for).
 */
function runtimeText(setup: OrtSetup, threadsInUse = setup.threads): string {
  const gpu = setup.webgpu.available
    ? `WebGPU adapter: ${[setup.webgpu.adapter.vendor, setup.webgpu.adapter.architecture, setup.webgpu.adapter.device].filter(Boolean).join(' ')}` +
      (setup.webgpu.adapter.isFallbackAdapter ? ' (a software adapter: it runs on the CPU)' : '')
    : `no WebGPU (${setup.webgpu.reason})`;
  const threads = setup.crossOriginIsolated
    ? `cross-origin isolated, ${threadsInUse} WASM thread${threadsInUse === 1 ? '' : 's'} (${setup.cores} cores)`
    : 'not cross-origin isolated (no COOP/COEP headers), so WASM runs 1 thread';
  return `Runtime: ${setup.provider}; ${gpu}; ${threads}.${setup.notes.length > 0 ? ` ${setup.notes.join('; ')}.` : ''}`;
}

// ---- training in the tab ----

let tabData: TabData | undefined;
let tabFeatures: HostTensor<'float32'> | undefined;
let tabUNet: AdmUNet | undefined;
let tabExtraction: NonNullable<PageState['training']>['extraction'];
const yieldToPage = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function train(head: TabHeadKind, epochs: number, learningRate: number): Promise<void> {
  const status = element('train-status');
  const curve = element('loss-curve');
  const losses: number[] = [];
  const training: NonNullable<PageState['training']> = { head, state: 'loading', losses };
  state.training = training;
  element('train-result').textContent = '';
  curve.innerHTML = '';
  const setup = await configureOrt();
  const runner = { executionProviders: executionProviders(setup.provider) };
  if (!tabData || !tabFeatures || !tabUNet) {
    status.textContent = 'Downloading the U-Net and the images…';
    const started = performance.now();
    const [weights, flags, subset] = await Promise.all([
      fetchOk(`${base}unet.safetensors`).then(async (r) => new Uint8Array(await r.arrayBuffer())),
      fetchOk(`${base}unet-flags.json`).then(async (r) => (await r.json()) as GuidedDiffusionFlags),
      fetchOk(`${base}${SUBSET_FILE}`).then(async (r) => new Uint8Array(await r.arrayBuffer())),
    ]);
    training.downloadMs = performance.now() - started;
    const all = readTabData(subset);
    const { tabTrain = all.trainCount, tabTest = all.testCount } = pageOptions(location.search);
    const data = tabSubset(all, tabTrain, tabTest);
    const unet = unetFromBytes(weights, flags);
    tabUNet = unet;
    training.state = 'extracting';
    const count = data.images.shape[0]!;
    let lastYield = performance.now();
    const extracted = await extractTabFeatures(unet, data.images, {
      trainCount: data.trainCount,
      runner,
      onProgress: async (done, total) => {
        status.textContent = `Extracting U-Net features (block 10, t=50, ${setup.provider}): ${done}/${total} images…`;
        if (performance.now() - lastYield > 50) {
          await yieldToPage();
          lastYield = performance.now();
        }
      },
    });
    tabData = data;
    tabFeatures = extracted.features;
    tabExtraction = {
      images: count,
      ms: extracted.ms,
      sessionMs: extracted.sessionMs,
      imagesPerSecond: count / (extracted.ms / 1000),
      provider: extracted.provider,
    };
  }
  // Features are extracted once per page; later runs train on them again.
  const extraction = tabExtraction;
  training.extraction = extraction;
  training.state = 'training';
  let lastDraw = 0;
  const result = await trainTabHead(tabFeatures, tabData.labels, tabData.trainCount, {
    head,
    unet: tabUNet!,
    epochs,
    batchSize: TAB_TRAINING.batchSize,
    learningRate,
    momentum: TAB_TRAINING.momentum,
    seed: 0,
    runner,
    onStep: async (step, loss, total) => {
      losses.push(loss);
      if (performance.now() - lastDraw > 100 || step === total) {
        status.textContent = `Training the ${head} head on ${tabData!.trainCount} images: step ${step}/${total}, loss ${loss.toFixed(4)}`;
        curve.innerHTML = lossCurveSvg(losses, 480, 200, total);
        await yieldToPage();
        lastDraw = performance.now();
      }
    },
  });
  const { losses: _losses, predictions: _predictions, weights: _weights, ...rest } = result;
  training.result = rest;
  training.state = 'done';
  curve.innerHTML = lossCurveSvg(losses, 480, 200, result.steps);
  const extractionText = extraction
    ? `Features of ${extraction.images} images extracted in ${format(extraction.ms)} (${extraction.imagesPerSecond.toFixed(1)} images/s on ${extraction.provider}). `
    : '';
  status.textContent = `${extractionText}Trained ${result.steps} steps (${epochs} epochs of batch ${TAB_TRAINING.batchSize}) in ${format(result.trainMs)}: ${result.stepsPerSecond.toFixed(1)} steps/s on ${result.provider}.`;
  element('train-result').textContent =
    `Held-out accuracy: ${(100 * result.accuracy).toFixed(1)}% (${result.correct}/${result.heldOut} test images). ` +
    `Loss ${result.epochLosses[0]!.toFixed(3)} in the first epoch, ${result.epochLosses.at(-1)!.toFixed(3)} in the last. ${result.parameters} trained parameters.`;
}

element('train-settings').textContent = tabTrainingSettingsText();
// The head choices come from the head registry: every kind on one block of frozen features.
element<HTMLSelectElement>('head').replaceChildren(
  ...TAB_HEAD_KINDS.map((kind, i) =>
    Object.assign(document.createElement('option'), { value: kind, textContent: `${kind}: ${protocolKind(kind).summary}`, selected: i === 0 }),
  ),
);

element<HTMLFormElement>('train-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const button = element<HTMLButtonElement>('train-button');
  button.disabled = true;
  const head = element<HTMLSelectElement>('head').value as TabHeadKind;
  const epochs = Number(element<HTMLInputElement>('epochs').value);
  const learningRate = Number(element<HTMLInputElement>('learning-rate').value);
  run(async () => {
    try {
      await train(head, epochs, learningRate);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      state.training = { ...(state.training ?? { head, losses: [] }), state: 'error', error: message };
      element('train-status').innerHTML = `<span class="error">${message}</span>`;
      console.error(error);
    } finally {
      button.disabled = false;
    }
  });
});

element<HTMLInputElement>('upload').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (!file) return;
  run(() => classifyBlob(file, file.name, element<HTMLInputElement>('invert').checked));
});

run(async () => {
  const setup = await configureOrt();
  state.runtime = setup;
  element('runtime').textContent = runtimeText(setup);
  await Promise.all([loadSamples(), loadModel()]);
  element('runtime').textContent = runtimeText(setup, state.model?.wasmThreads);
  element<HTMLButtonElement>('train-button').disabled = false;
});
