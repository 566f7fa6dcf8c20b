import { ConfigError, DTypeError, ShapeError, UnsupportedError } from '../errors.js';
import { dimsEqual, formatShape } from '../graph/dim.js';
import type { GraphNode, SymbolicTensor } from '../graph/graph.js';
import { graphOf } from '../graph/op.js';
import { isFloatDataType } from '../tensor/dtype.js';
import { add } from '../ops/add.js';
import { broadcastTo } from '../ops/broadcast-to.js';

/**
 * Reverse-mode differentiation: builds the backward pass into the same graph
 * and returns `d output / d wrt` for each tensor in `wrt`. Only the nodes on a
 * path from `wrt` to `output` are differentiated; every other tensor (frozen
 * weights included) is a constant for the backward pass. Outputs of ops that
 * define `rematerialize` (GELU) are recomputed for the backward pass instead
 * of being read from the forward pass, which frees them earlier.
 *
 * @param output - the tensor to differentiate (a scalar unless `outputGradient` is given)
 * @param wrt - tensors to differentiate with respect to (float)
 * @param outputGradient - the seed gradient, shaped like `output` (default 1 for a scalar)
 * @returns one gradient per `wrt` entry, shaped like it (zeros when it does not influence `output`)
 * @throws {@link ShapeError} for a non-scalar output without seed; {@link UnsupportedError} for an op on the path without a gradient
 * @public
 */
export function gradients(output: SymbolicTensor, wrt: readonly SymbolicTensor[], outputGradient?: SymbolicTensor): SymbolicTensor[] {
  const graph = graphOf('gradients', [output, ...wrt, ...(outputGradient ? [outputGradient] : [])]);
  if (!isFloatDataType(output.dtype)) throw new DTypeError(`gradients: expected a float output; found ${output.describe()}`);
  for (const tensor of wrt) {
    if (!isFloatDataType(tensor.dtype)) throw new DTypeError(`gradients: can only differentiate with respect to float tensors; found ${tensor.describe()}`);
  }
  let seed = outputGradient;
  if (!seed) {
    if (output.rank !== 0) throw new ShapeError(`gradients: expected a scalar output (or an outputGradient); found ${output.describe()}`);
    seed = graph.scalar(1, output.dtype);
  } else if (seed.rank !== output.rank || seed.shape.some((d, i) => !dimsEqual(d, output.shape[i]!))) {
    throw new ShapeError(`gradients: outputGradient must have the output's shape ${formatShape(output.shape)}; found ${formatShape(seed.shape)}`);
  }

  // Tensors that depend on some wrt entry.
  const dependent = new Set(wrt.map((t) => t.id));
  const activeNodes: GraphNode[] = [];
  for (const node of graph.nodes) {
    if (node.id > output.id) break;
    if (node.op.stopsGradient) continue;
    if (node.inputs.some((input) => dependent.has(input.id))) {
      activeNodes.push(node);
      for (const out of node.outputs) dependent.add(out.id);
    }
  }
  // Tensors that the output depends on.
  const contributes = new Set([output.id]);
  const path: GraphNode[] = [];
  for (let i = activeNodes.length - 1; i >= 0; i--) {
    const node = activeNodes[i]!;
    if (!node.outputs.some((out) => contributes.has(out.id))) continue;
    path.push(node);
    for (const input of node.inputs) contributes.add(input.id);
  }

  // Forward tensors whose op can recompute them (OpDefinition.rematerialize)
  // are read by the backward pass through their recomputed copy, built once
  // at the first backward use. Every tensor seen here is a forward tensor:
  // path nodes all exist before the backward pass starts.
  const recomputed = new Map<number, SymbolicTensor>();
  const forBackward = (tensor: SymbolicTensor): SymbolicTensor => {
    const producer = tensor.producer;
    if (!producer?.op.rematerialize) return tensor;
    if (!recomputed.has(tensor.id)) {
      const copies = producer.op.rematerialize(producer.inputs.map(forBackward), producer.attributes);
      const fits = (copy: SymbolicTensor | undefined, out: SymbolicTensor) =>
        copy !== undefined && copy.dtype === out.dtype && copy.rank === out.rank && copy.shape.every((d, axis) => dimsEqual(d, out.shape[axis]!));
      if (copies.length !== producer.outputs.length || producer.outputs.some((out, i) => !fits(copies[i], out))) {
        const describe = (tensors: readonly SymbolicTensor[]) => tensors.map((t) => `${t.dtype}${formatShape(t.shape)}`).join(', ');
        throw new ConfigError(
          `gradients: rematerialize of op '${producer.op.name}' returned ${copies.length} tensors (${describe(copies)}); expected ${producer.outputs.length} like its outputs (${describe(producer.outputs)})`,
        );
      }
      producer.outputs.forEach((out, i) => recomputed.set(out.id, copies[i]!));
    }
    return recomputed.get(tensor.id)!;
  };
  const accumulated = new Map<number, SymbolicTensor>([[output.id, seed]]);
  const accumulate = (tensor: SymbolicTensor, gradient: SymbolicTensor) => {
    const previous = accumulated.get(tensor.id);
    accumulated.set(tensor.id, previous ? add(previous, gradient) : gradient);
  };
  for (const node of path) {
    const outputGradients = node.outputs.map((out) => accumulated.get(out.id));
    if (outputGradients.every((g) => g === undefined)) continue;
    if (!node.op.gradient) {
      throw new UnsupportedError(`gradients: op '${node.op.name}' lies between the inputs and the output but has no gradient`);
    }
    const needsGradient = node.inputs.map((input) => dependent.has(input.id) && contributes.has(input.id) && isFloatDataType(input.dtype));
    const inputGradients = node.op.gradient({
      inputs: node.inputs.map(forBackward),
      outputs: node.outputs.map(forBackward),
      outputGradients,
      attributes: node.attributes,
      needsGradient,
    });
    node.inputs.forEach((input, i) => {
      const gradient = inputGradients[i];
      if (!needsGradient[i] || !gradient) return;
      if (gradient.rank !== input.rank || gradient.shape.some((d, axis) => !dimsEqual(d, input.shape[axis]!))) {
        throw new ConfigError(
          `gradients: the gradient of '${node.op.name}' for input ${i} has shape ${formatShape(gradient.shape)}; expected ${formatShape(input.shape)}`,
        );
      }
      accumulate(input, gradient);
    });
  }
  return wrt.map((tensor) => accumulated.get(tensor.id) ?? broadcastTo(graph.scalar(0, tensor.dtype), tensor.shape));
}
