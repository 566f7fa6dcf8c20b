// The exported classifier (U-Net + head as one ONNX model) on onnxruntime-web.
import { createRunner, FormatError, type Runner } from '@diffssl/core';
import { classifierFeeds, topClasses, type ExportedClassifierInfo } from '@diffssl/eval/classifier';
import { configureOrt, executionProviders } from './ort-setup.js';
import { modelImages } from './pixels.js';

/** A loaded classifier and how long loading took. */
export interface LoadedClassifier {
  runner: Runner;
  info: ExportedClassifierInfo;
  /** Execution provider in use (`webgpu` or `wasm`). */
  provider: string;
  /** Why a preferred provider was not used, if it was not. */
  providerNotes: string[];
  /** onnxruntime-web's WASM threads once the session is open (`ort.env.wasm.numThreads`, which ORT sets back to 1 where threads cannot run). */
  wasmThreads: number;
  /** Model size in bytes. */
  bytes: number;
  /** Milliseconds: fetching the model and sidecar, and creating the session. */
  fetchMs: number;
  sessionMs: number;
}

/** One classification. */
export interface Classification {
  top: { name: string; index: number; probability: number }[];
  /** Every class probability, in class order (the model's `probabilities` output). */
  probabilities: number[];
  /** Milliseconds of the session run (feeds built, run, outputs read). */
  ms: number;
}

/**
 * Fetches a URL and checks the response's status.
 *
 * @param url - what to fetch
 * @returns the response, its status in the 200 range
 * @throws `FormatError` naming the URL for any other status
 */
export async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new FormatError(`fetch ${url}: expected 200; found ${response.status} ${response.statusText}`);
  return response;
}

/**
 * Fetches `<base>.onnx` and its sidecar `<base>.json` and opens a session on
 * the page's provider ({@link configureOrt}: WebGPU where the browser offers a
 * usable adapter, else WASM; WASM also stands behind WebGPU).
 *
 * @param base - URL of the model without extension
 */
export async function loadClassifier(base: string): Promise<LoadedClassifier> {
  const setup = await configureOrt();
  const fetchStart = performance.now();
  const [modelBytes, info] = await Promise.all([
    fetchOk(`${base}.onnx`).then(async (r) => new Uint8Array(await r.arrayBuffer())),
    fetchOk(`${base}.json`).then(async (r) => (await r.json()) as ExportedClassifierInfo),
  ]);
  const fetchMs = performance.now() - fetchStart;
  const providerNotes: string[] = [];
  const sessionStart = performance.now();
  const runner = await createRunner(modelBytes, {
    executionProviders: executionProviders(setup.provider),
    onWarning: (message) => providerNotes.push(message),
  });
  const sessionMs = performance.now() - sessionStart;
  const wasmThreads = (await import('onnxruntime-web')).env.wasm.numThreads ?? 1;
  return { runner, info, provider: runner.provider, providerNotes, wasmThreads, bytes: modelBytes.byteLength, fetchMs, sessionMs };
}

/**
 * Classifies gray images of the model's size.
 *
 * @param model - the loaded classifier
 * @param gray - one image of `imageSize` x `imageSize` bytes
 */
export async function classify(model: LoadedClassifier, gray: Uint8Array): Promise<Classification> {
  const start = performance.now();
  const images = modelImages([gray], model.info.imageSize, model.info.channels);
  const outputs = await model.runner.run(classifierFeeds(model.info, images));
  const logits = outputs.logits!;
  const probabilities = outputs.probabilities!.toArray();
  const ms = performance.now() - start;
  return { top: topClasses(logits, 0, model.info.classNames, 5), probabilities, ms };
}
