// What `scripts/prepare.ts` writes into public/generated/ and the page reads (shared by both).

/** Bump when the generated files change, so that stale ones are rebuilt. */
export const ASSET_VERSION = 2;

/** Folder of the generated files, relative to the page. */
export const GENERATED = 'generated/';

/** The exported classifier's training: a linear GD(L) head on block 10 at t=50, trained by `runProtocol`. */
export const CLASSIFIER_SETTINGS = {
  protocol: 'linear',
  block: 10,
  timestep: 50,
  trainImages: 2000,
  testImages: 500,
  epochs: 30,
  learningRate: 0.05,
} as const;

/** The images and labels for training in the tab. */
export const SUBSET_FILE = 'fm-subset.safetensors';

/** One sample image to classify. */
export interface SampleEntry {
  /** Path relative to the generated folder. */
  file: string;
  /** True class index. */
  label: number;
  className: string;
  /** Index in the Fashion-MNIST test split. */
  testIndex: number;
}

/** `manifest.json`: written last, so its presence means the rest is complete. */
export interface AssetManifest {
  version: number;
  tabTrain: number;
  tabTest: number;
  samples: number;
}
