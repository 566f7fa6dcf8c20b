import { ConfigError, DTypeError, ShapeError } from '../errors.js';
import { formatShape, isStaticDim, type Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import type { DataType } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import { GraphLowering, tensorProto, valueInfo, type NodeProtoObject } from './lowering.js';
import { onnxType } from './onnx-schema.js';

/** The ONNX default-domain opset this project emits. @public */
export const OPSET_VERSION = 18;
/** ONNX IR version written into models. */
const IR_VERSION = 8;

/** Name, dtype and shape of a model input or output. @public */
export interface ValueDescription {
  /** The graph input's or output's name. */
  readonly name: string;
  /** Its data type. */
  readonly dtype: DataType;
  /** Its shape: numbers, or named symbolic dimensions such as `'batch'`. */
  readonly shape: readonly Dim[];
}

/** Options of {@link compileModel}. @public */
export interface CompileOptions {
  /** Named outputs of the model. */
  outputs: Record<string, SymbolicTensor>;
  /** Weights to feed at run time instead of storing as initializers (trainable parameters). */
  weightsAsInputs?: readonly SymbolicTensor[];
  /** Extra graph inputs to declare even when the outputs do not need them. */
  inputs?: readonly SymbolicTensor[];
  /** Model name stored in the ONNX graph. */
  name?: string;
}

/** Options of {@link OnnxModel.serialize}. @public */
export interface SerializeOptions {
  /**
   * Initializers of at least this many bytes go to an external data file
   * (required above 2 GB, the protobuf limit). Default: never.
   */
  externalDataThreshold?: number;
  /** File name of the external data, relative to the model file. Default `model.onnx.data`. */
  externalDataLocation?: string;
}

/** A serialized model: the ONNX bytes and, when used, the external data bytes. @public */
export interface SerializedModel {
  /** The ModelProto bytes. */
  model: Uint8Array;
  /** External data chunks in file order (concatenate to write the data file). */
  externalData: Uint8Array[];
  /** File name the model refers to for its external data. */
  externalDataLocation: string | undefined;
}

/**
 * A compiled ONNX model with named inputs and outputs. Serialize it with
 * {@link OnnxModel.serialize} or run it with a `Runner`.
 *
 * @public
 */
export class OnnxModel {
  /** @internal */
  constructor(
    /** Graph inputs in order. */
    readonly inputs: readonly ValueDescription[],
    /** Graph outputs in order. */
    readonly outputs: readonly ValueDescription[],
    /** @internal */ readonly graphProto: { node: NodeProtoObject[]; name: string },
    /** Initializers by name. */
    readonly initializers: ReadonlyMap<string, HostTensor>,
  ) {}

  /** Total bytes of the initializers. */
  get initializerBytes(): number {
    let total = 0;
    for (const tensor of this.initializers.values()) total += tensor.size * tensor.data.BYTES_PER_ELEMENT;
    return total;
  }

  /**
   * Encodes the model as ONNX protobuf bytes, moving large initializers to
   * external data when asked.
   *
   * @throws {@link ConfigError} when the model would exceed protobuf's 2 GB limit without external data
   */
  serialize(options: SerializeOptions = {}): SerializedModel {
    const threshold = options.externalDataThreshold ?? Infinity;
    const location = options.externalDataLocation ?? 'model.onnx.data';
    const externalData: Uint8Array[] = [];
    let offset = 0;
    let inlineBytes = 0;
    const initializer = [...this.initializers].map(([name, tensor]) => {
      const proto = tensorProto(name, tensor) as { rawData: Uint8Array };
      if (proto.rawData.byteLength < threshold) {
        inlineBytes += proto.rawData.byteLength;
        return proto;
      }
      const aligned = Math.ceil(offset / 4096) * 4096;
      if (aligned > offset) externalData.push(new Uint8Array(aligned - offset));
      externalData.push(proto.rawData);
      const entry = {
        ...proto,
        rawData: undefined,
        dataLocation: 1,
        externalData: [
          { key: 'location', value: location },
          { key: 'offset', value: String(aligned) },
          { key: 'length', value: String(proto.rawData.byteLength) },
        ],
      };
      offset = aligned + proto.rawData.byteLength;
      return entry;
    });
    if (inlineBytes > 2 ** 31 - 1 - 64 * 1024 * 1024) {
      throw new ConfigError(
        `OnnxModel.serialize: ${inlineBytes} bytes of inline initializers exceed protobuf's 2 GB limit; set externalDataThreshold (for example 1024)`,
      );
    }
    const model = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET_VERSION }],
      producerName: '@diffssl/core',
      graph: {
        ...this.graphProto,
        initializer,
        input: this.inputs.map((input) => valueInfo(input.name, input)),
        output: this.outputs.map((output) => valueInfo(output.name, output)),
      },
    };
    const bytes = onnxType('ModelProto')
      .encode(model as never)
      .finish();
    return { model: bytes, externalData, externalDataLocation: externalData.length > 0 ? location : undefined };
  }
}

/**
 * Compiles the part of a graph needed for `outputs` to an ONNX model. Graph
 * inputs that the outputs need become model inputs; constants and weights
 * become initializers, except `weightsAsInputs`, which become inputs.
 *
 * @example
 * ```ts
 * const model = compileModel({ outputs: { y: relu(x) } });
 * const runner = await createRunner(model, { executionProviders: ['cpu'] });
 * ```
 * @throws {@link ConfigError} for an empty output set or clashing names
 * @public
 */
export function compileModel(options: CompileOptions): OnnxModel {
  const outputEntries = Object.entries(options.outputs);
  if (outputEntries.length === 0) throw new ConfigError('compileModel: expected at least one output; found none');
  const weightsAsInputs = options.weightsAsInputs ?? [];
  for (const weight of weightsAsInputs) {
    if (weight.source !== 'weight') throw new ConfigError(`compileModel: weightsAsInputs must hold weights; found ${weight.describe()}`);
  }
  const outputTensors = outputEntries.map(([, tensor]) => tensor);
  // Find the graph inputs the outputs depend on.
  const needed = new Map<number, SymbolicTensor>();
  const stack = [...outputTensors];
  const visited = new Set<number>();
  while (stack.length > 0) {
    const tensor = stack.pop()!;
    if (visited.has(tensor.id)) continue;
    visited.add(tensor.id);
    if (tensor.source === 'input' || weightsAsInputs.includes(tensor)) needed.set(tensor.id, tensor);
    if (tensor.producer) stack.push(...tensor.producer.inputs);
  }
  for (const tensor of [...(options.inputs ?? []), ...weightsAsInputs]) needed.set(tensor.id, tensor);
  const inputs = [...needed.values()].sort((a, b) => a.id - b.id);
  const bindings = new Map(inputs.map((tensor) => [tensor, tensor.name!] as const));
  const initializers = new Map<string, HostTensor>();
  const lowering = new GraphLowering('', initializers, bindings);
  lowering.lower(outputTensors);
  const outputNames = new Set<string>();
  for (const [name, tensor] of outputEntries) {
    if (outputNames.has(name)) throw new ConfigError(`compileModel: duplicate output name '${name}'`);
    if (inputs.some((input) => input.name === name)) throw new ConfigError(`compileModel: output name '${name}' is also an input name`);
    outputNames.add(name);
    lowering.nodes.push({ input: [lowering.nameOf(tensor)], output: [name], name: `output/${name}`, opType: 'Identity', attribute: [] });
  }
  return new OnnxModel(
    inputs.map((tensor) => ({ name: tensor.name!, dtype: tensor.dtype, shape: tensor.shape })),
    outputEntries.map(([name, tensor]) => ({ name, dtype: tensor.dtype, shape: tensor.shape })),
    { node: lowering.nodes, name: options.name ?? 'diffssl' },
    initializers,
  );
}

/**
 * Checks feeds against input descriptions: every input present, dtypes equal,
 * static sizes equal, each named size consistent across inputs.
 *
 * @throws {@link ConfigError} for a missing or unknown feed, {@link DTypeError} or {@link ShapeError} for a mismatch
 * @public
 */
export function validateFeeds(inputs: readonly ValueDescription[], feeds: Record<string, HostTensor>, where: string): void {
  const namedSizes = new Map<string, { size: number; from: string }>();
  for (const input of inputs) {
    const feed = feeds[input.name];
    if (!feed)
      throw new ConfigError(
        `${where}: missing input '${input.name}' (${input.dtype}${formatShape(input.shape)}); given: ${Object.keys(feeds).join(', ') || 'nothing'}`,
      );
    if (feed.dtype !== input.dtype) throw new DTypeError(`${where}: input '${input.name}' must be ${input.dtype}; found ${feed.dtype}`);
    if (feed.shape.length !== input.shape.length) {
      throw new ShapeError(`${where}: input '${input.name}' must have shape ${formatShape(input.shape)}; found [${feed.shape.join(', ')}]`);
    }
    input.shape.forEach((dim, axis) => {
      const size = feed.shape[axis]!;
      if (isStaticDim(dim)) {
        if (dim !== size) throw new ShapeError(`${where}: input '${input.name}' must have shape ${formatShape(input.shape)}; found [${feed.shape.join(', ')}]`);
        return;
      }
      const key = String(dim);
      const previous = namedSizes.get(key);
      if (previous && previous.size !== size) {
        throw new ShapeError(`${where}: dimension '${key}' is ${previous.size} in input '${previous.from}' but ${size} in input '${input.name}'`);
      }
      namedSizes.set(key, { size, from: input.name });
    });
  }
  const known = new Set(inputs.map((input) => input.name));
  for (const name of Object.keys(feeds)) {
    if (!known.has(name)) throw new ConfigError(`${where}: unknown input '${name}'; the model takes ${[...known].join(', ') || 'no inputs'}`);
  }
}
