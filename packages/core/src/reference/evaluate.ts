import { ConfigError } from '../errors.js';
import { dimFactors } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import type { ReferenceContext } from '../graph/op.js';
import { collectNodes } from '../onnx/lowering.js';
import { validateFeeds } from '../onnx/model.js';
import type { HostTensor } from '../tensor/host-tensor.js';

/** Options of {@link evaluateReference}. @public */
export interface ReferenceOptions {
  /**
   * `'float64'` (default) computes every float32 value in float64, the
   * independent reference that ONNX lowerings and gradients are checked
   * against; `'float32'` keeps float32.
   */
  precision?: 'float32' | 'float64';
}

/**
 * Evaluates symbolic tensors with the plain TypeScript reference kernels of
 * their ops (no ONNX Runtime). Slow, simple and exact: the yardstick for the
 * ONNX path.
 *
 * @param outputs - the tensors to compute
 * @param feeds - values of the graph inputs by name
 * @param options - precision
 * @returns one host tensor per output
 * @throws {@link ConfigError} for missing feeds; shape and dtype errors as the ONNX path
 * @public
 */
export function evaluateReference(outputs: readonly SymbolicTensor[], feeds: Record<string, HostTensor>, options: ReferenceOptions = {}): HostTensor[] {
  const promote = (options.precision ?? 'float64') === 'float64';
  const widen = (tensor: HostTensor): HostTensor => (promote && tensor.dtype === 'float32' ? tensor.cast('float64') : tensor);
  const nodes = collectNodes(outputs, new Set());
  const inputs = new Map<number, SymbolicTensor>();
  for (const node of nodes) for (const input of node.inputs) if (input.source === 'input') inputs.set(input.id, input);
  for (const output of outputs) if (output.source === 'input') inputs.set(output.id, output);
  const neededFeeds: Record<string, HostTensor> = {};
  for (const input of inputs.values()) {
    if (!feeds[input.name!]) throw new ConfigError(`evaluateReference: missing feed '${input.name}'`);
    neededFeeds[input.name!] = widen(feeds[input.name!]!);
  }
  // In float64 mode float32 inputs are computed (and may be fed) in float64.
  const expectedDtype = (dtype: SymbolicTensor['dtype']) => (promote && dtype === 'float32' ? 'float64' : dtype);
  validateFeeds(
    [...inputs.values()].map((t) => ({ name: t.name!, dtype: expectedDtype(t.dtype), shape: t.shape })),
    neededFeeds,
    'evaluateReference',
  );
  const sizes = new Map<string, number>();
  for (const input of inputs.values()) {
    input.shape.forEach((dim, axis) => {
      const { names, coefficient } = dimFactors(dim);
      if (names.length === 1 && coefficient > 0) sizes.set(names[0]!, neededFeeds[input.name!]!.shape[axis]! / coefficient);
    });
  }
  const context: ReferenceContext = {
    resolve: (shape) =>
      shape.map((dim) => {
        const { coefficient, names } = dimFactors(dim);
        return names.reduce((product, name) => {
          const size = sizes.get(name);
          if (size === undefined) throw new ConfigError(`evaluateReference: no input gives the size of dimension '${name}'`);
          return product * size;
        }, coefficient);
      }),
  };
  const values = new Map<number, HostTensor>();
  const evaluated = (tensor: SymbolicTensor): HostTensor => {
    let value = values.get(tensor.id);
    if (value) return value;
    if (tensor.source === 'input') value = neededFeeds[tensor.name!]!;
    else if (tensor.value) value = widen(tensor.value);
    else throw new ConfigError(`evaluateReference: ${tensor.describe()} has no value (internal ordering error)`);
    values.set(tensor.id, value);
    return value;
  };
  for (const node of nodes) {
    const results = node.op.reference(node.inputs.map(evaluated), node.attributes, context);
    node.outputs.forEach((output, i) => values.set(output.id, widen(results[i]!)));
  }
  return outputs.map(evaluated);
}
