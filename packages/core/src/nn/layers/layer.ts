import type { SymbolicTensor } from '../../graph/graph.js';
import type { BuildContext } from '../context.js';
import { Module } from '../module.js';

/**
 * A module that maps one tensor to one tensor, so it can sit in a
 * {@link Sequential}.
 *
 * @public
 */
export abstract class Layer extends Module {
  /** Builds the layer into the context's graph. */
  abstract forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor;
}

/**
 * A parameter-free layer given as a function (PyTorch's `LambdaLayer`): it
 * takes a numbered place in a {@link Sequential} but holds no tensors.
 *
 * @example
 * ```ts
 * const flatten = new Lambda('Flatten', (_context, x) => reshape(x, [x.shape[0]!, -1]));
 * ```
 * @public
 */
export class Lambda extends Layer {
  /**
   * @param label - what it does, for messages (`'Reshape'`)
   * @param apply - the function
   */
  constructor(
    readonly label: string,
    private readonly apply: (context: BuildContext, x: SymbolicTensor) => SymbolicTensor,
  ) {
    super();
  }

  /** Applies the function. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return this.apply(context, x);
  }
}
