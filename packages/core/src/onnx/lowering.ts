import { ConfigError } from '../errors.js';
import type { OnnxAttribute } from '../graph/attributes.js';
import { dimFactors, isStaticDim, type Dim } from '../graph/dim.js';
import type { GraphNode, SymbolicTensor } from '../graph/graph.js';
import type { LoweringContext } from '../graph/op.js';
import { ONNX_DATA_TYPE } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { ATTRIBUTE_TYPE } from './onnx-schema.js';

/** A plain-object ONNX NodeProto. */
export interface NodeProtoObject {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  attribute: object[];
  domain?: string;
}

/** The ONNX TensorProto plain object of a host tensor (raw little-endian bytes). */
export function tensorProto(name: string, tensor: HostTensor): object {
  const dense = tensor.contiguous();
  const bytes = new Uint8Array(
    dense.data.buffer,
    dense.data.byteOffset + dense.offset * dense.data.BYTES_PER_ELEMENT,
    dense.size * dense.data.BYTES_PER_ELEMENT,
  );
  return { name, dims: [...tensor.shape], dataType: ONNX_DATA_TYPE[tensor.dtype], rawData: bytes };
}

/** ONNX AttributeProto plain object. */
export function attributeProto(name: string, attribute: OnnxAttribute): object {
  switch (attribute.type) {
    case 'int':
      return { name, type: ATTRIBUTE_TYPE.int, i: attribute.value };
    case 'ints':
      return { name, type: ATTRIBUTE_TYPE.ints, ints: [...attribute.value] };
    case 'float':
      return { name, type: ATTRIBUTE_TYPE.float, f: attribute.value };
    case 'floats':
      return { name, type: ATTRIBUTE_TYPE.floats, floats: [...attribute.value] };
    case 'string':
      return { name, type: ATTRIBUTE_TYPE.string, s: new TextEncoder().encode(attribute.value) };
    case 'tensor':
      return { name, type: ATTRIBUTE_TYPE.tensor, t: tensorProto('', attribute.value) };
    case 'graph':
      return { name, type: ATTRIBUTE_TYPE.graph, g: attribute.value };
  }
}

/** ONNX ValueInfoProto plain object for a tensor description. */
export function valueInfo(name: string, info: { dtype: keyof typeof ONNX_DATA_TYPE; shape: readonly Dim[] }): object {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DATA_TYPE[info.dtype],
        shape: { dim: info.shape.map((d) => (isStaticDim(d) ? { dimValue: d } : { dimParam: String(d) })) },
      },
    },
  };
}

/**
 * Collects the nodes needed to compute `outputs`, stopping at tensors that
 * are already bound (inputs, weights fed at run time). Returns them in
 * topological (creation) order. This is what makes early exit free: nothing
 * after the requested outputs is ever lowered.
 */
export function collectNodes(outputs: readonly SymbolicTensor[], bound: ReadonlySet<number>): GraphNode[] {
  const seen = new Set<number>();
  const nodes: GraphNode[] = [];
  const stack = [...outputs];
  while (stack.length > 0) {
    const tensor = stack.pop()!;
    if (bound.has(tensor.id) || !tensor.producer || seen.has(tensor.producer.id)) continue;
    seen.add(tensor.producer.id);
    nodes.push(tensor.producer);
    stack.push(...tensor.producer.inputs);
  }
  return nodes.sort((a, b) => a.id - b.id);
}

/**
 * Emits ONNX nodes for a set of symbolic tensors into one ONNX graph (the main
 * graph or a Loop body). Constants and frozen weights become initializers of
 * the shared initializer table.
 */
export class GraphLowering {
  readonly nodes: NodeProtoObject[] = [];
  private readonly names = new Map<number, string>();
  private readonly dimCache = new Map<string, string>();
  private readonly available: SymbolicTensor[] = [];
  private counter = 0;

  /**
   * @param prefix - prefix of every generated name (unique per ONNX graph)
   * @param initializers - shared initializer table (name -> value)
   * @param bindings - tensors whose ONNX value name is given (inputs)
   */
  constructor(
    private readonly prefix: string,
    private readonly initializers: Map<string, HostTensor>,
    bindings: ReadonlyMap<SymbolicTensor, string>,
  ) {
    for (const [tensor, name] of bindings) {
      this.names.set(tensor.id, name);
      this.available.push(tensor);
    }
  }

  /** A fresh value name. */
  freshName(hint: string): string {
    return `${this.prefix}${hint}_${this.counter++}`;
  }

  /** Adds an initializer and returns its name. */
  addInitializer(value: HostTensor, name?: string): string {
    const resolved = name ?? this.freshName('const');
    this.initializers.set(resolved, value);
    return resolved;
  }

  /** The ONNX name of a tensor, lowering its producer chain on demand. */
  nameOf(tensor: SymbolicTensor): string {
    const known = this.names.get(tensor.id);
    if (known !== undefined) return known;
    if (tensor.source === 'constant' || tensor.source === 'weight') {
      const name = this.addInitializer(tensor.value!, tensor.source === 'weight' ? tensor.name : undefined);
      this.names.set(tensor.id, name);
      return name;
    }
    if (tensor.source === 'input') {
      throw new ConfigError(`compile: graph input '${tensor.name}' is needed by the outputs but was not bound`);
    }
    throw new ConfigError(`compile: ${tensor.describe()} was not lowered before use (internal ordering error)`);
  }

  /** Lowers the nodes (in topological order) producing the given outputs. */
  lower(outputs: readonly SymbolicTensor[]): void {
    const bound = new Set(this.names.keys());
    for (const node of collectNodes(outputs, bound)) this.lowerNode(node);
  }

  private lowerNode(node: GraphNode): void {
    const inputNames = node.inputs.map((input) => this.nameOf(input));
    const context = this.contextFor(node);
    const outputNames = node.op.lower(context, inputNames, node.attributes);
    if (outputNames.length !== node.outputs.length) {
      throw new ConfigError(`compile: lowering of ${node.op.name} produced ${outputNames.length} outputs; expected ${node.outputs.length}`);
    }
    node.outputs.forEach((output, i) => {
      this.names.set(output.id, outputNames[i]!);
      this.available.push(output);
    });
  }

  private contextFor(node: GraphNode): LoweringContext {
    const emit = (opType: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, outputCount = 1) => {
      const outputs = Array.from({ length: outputCount }, () => this.freshName(opType));
      this.nodes.push({
        input: [...inputs],
        output: outputs,
        name: this.freshName(`${node.op.name}/${opType}`),
        opType,
        attribute: Object.entries(attributes).map(([name, value]) => attributeProto(name, value)),
      });
      return outputs;
    };
    const int64s = (values: readonly number[]) =>
      this.addInitializer(
        HostTensor.from(
          'int64',
          [values.length],
          values.map((v) => BigInt(v)),
        ),
      );
    const dimTensor = (dim: Dim): string => {
      const key = String(dim);
      const cached = this.dimCache.get(key);
      if (cached) return cached;
      const { coefficient, names } = dimFactors(dim);
      let result: string | undefined = coefficient === 1 && names.length > 0 ? undefined : int64s([coefficient]);
      for (const name of names) {
        // A tensor with this name as a dimension, or with a multiple of it ('3*batch').
        let found: { tensor: SymbolicTensor; axis: number; multiple: number } | undefined;
        for (const tensor of this.available) {
          const axis = tensor.shape.findIndex((d) => {
            const factors = dimFactors(d);
            return factors.names.length === 1 && factors.names[0] === name;
          });
          if (axis < 0) continue;
          found = { tensor, axis, multiple: dimFactors(tensor.shape[axis]!).coefficient };
          if (found.multiple === 1) break;
        }
        if (!found) throw new ConfigError(`compile: no input carries the named dimension '${name}', so its size is unknown at run time`);
        const shape = emit('Shape', [this.nameOf(found.tensor)])[0]!;
        let size = emit('Gather', [shape, int64s([found.axis])], { axis: { type: 'int', value: 0 } })[0]!;
        if (found.multiple !== 1) size = emit('Div', [size, int64s([found.multiple])])[0]!;
        result = result === undefined ? size : emit('Mul', [result, size])[0]!;
      }
      this.dimCache.set(key, result!);
      return result!;
    };
    return {
      node,
      emit,
      int64s,
      constant: (value) => this.addInitializer(value),
      shapeTensor: (shape) => {
        if (shape.every(isStaticDim)) return int64s(shape as number[]);
        return emit(
          'Concat',
          shape.map((d) => (isStaticDim(d) ? int64s([d]) : dimTensor(d))),
          { axis: { type: 'int', value: 0 } },
        )[0]!;
      },
    };
  }
}
