import type { BuildContext, DataType, HostTensor, Module, SymbolicTensor } from '@diffssl/core';

/** One named input of a classifier: dtype and shape without the batch axis. @public */
export interface ClassifierInput {
  /** The input's data type. */
  readonly dtype: DataType;
  /** Its shape without the batch axis. */
  readonly shape: readonly number[];
}

/**
 * A trainable classifier as the training loop sees it: modules whose tensors
 * are the model, named inputs, and the logits built from them. Every protocol
 * (a head on cached features, or DifFeed on images) takes this form.
 *
 * @public
 */
export interface ClassifierGraph {
  /** Number of classes K. */
  readonly numClasses: number;
  /** The modules whose tensors are the model (trainable, or frozen by `Module.freeze`). */
  modules(): Module[];
  /** The inputs besides `labels`, by name. */
  inputs(): ReadonlyMap<string, ClassifierInput>;
  /** Logits [B, K] from graph inputs named as {@link ClassifierGraph.inputs}. */
  forward(context: BuildContext, inputs: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor;
}

/**
 * Labeled examples as a classifier reads them: its named inputs for any rows,
 * read on demand (from a feature cache, or images with noise).
 *
 * @public
 */
export interface ExampleSource {
  /** Number of examples. */
  readonly length: number;
  /** The class of example `index`. */
  label(index: number): number;
  /**
   * The classifier's inputs for some examples, rows in the given order.
   * `epoch` and `training` let a source draw fresh noise or augmentation per
   * epoch, deterministically.
   */
  read(indices: readonly number[], when: { epoch: number; training: boolean }): Promise<Record<string, HostTensor>>;
}
