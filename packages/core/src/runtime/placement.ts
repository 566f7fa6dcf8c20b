/**
 * Where ONNX Runtime ran a graph's nodes, read from its profiler's output.
 *
 * ORT silently runs a node that an execution provider does not support on the
 * CPU provider. Its profiler records, for every kernel it ran, the provider,
 * the op type and the input and output shapes; this module turns that record
 * into the share of the graph's arithmetic each provider did.
 *
 * FLOP rules (one multiply-add counts 2):
 *
 * - `Conv`, `FusedConv`, `NhwcConv`: 2 x output elements x (Cin/groups x kh x kw),
 *   the weight's size over its first axis. The weight's shape comes from the
 *   profile when ORT lists it, else from the compiled model (the node found by
 *   its name with ORT's suffixes stripped: WebGPU's NHWC rewrite drops a
 *   constant weight from the profile).
 * - `ConvTranspose`: 2 x input elements x (Cout/groups x kh x kw), the same weight rule.
 * - `MatMul`, `Gemm`, `FusedMatMul`, `FusedGemm`, `MatMulNBits`: 2 x output elements x K,
 *   where K is the first input's last two sizes over the output's rows (so
 *   transposed operands need no attribute).
 * - Every other op: 1 per output element.
 *
 * A node that appears in several runs counts once (its first occurrence).
 * A convolution whose weight shape is found nowhere counts 1 per output
 * element and is listed in {@link PlacementReport.unresolved}.
 */
import { ConfigError } from '../errors.js';
import { OnnxModel } from '../onnx/model.js';
import { onnxType } from '../onnx/onnx-schema.js';

/** One graph node as the profiler saw it, with its FLOPs under the module's rules. @public */
export interface PlacedNode {
  /** The node's name as ORT reports it (our ONNX node name, sometimes with a suffix from an ORT rewrite). */
  readonly name: string;
  /** The ONNX op type (`Conv`, `MatMul`, ...). */
  readonly opType: string;
  /** ORT's execution provider name (`WebGpuExecutionProvider`, `CPUExecutionProvider`, ...). */
  readonly provider: string;
  /** FLOPs under the rules of this module. */
  readonly flops: number;
}

/** A graph's placement: what each provider ran, as nodes and as a share of FLOPs. @public */
export interface PlacementReport {
  /** The ORT provider the runner asked for (`WebGpuExecutionProvider`, ...). */
  readonly provider: string;
  /** Total FLOPs of the graph (one run, each node once). */
  readonly totalFlops: number;
  /** FLOPs per ORT provider. */
  readonly flopsByProvider: Readonly<Record<string, number>>;
  /** Nodes per ORT provider. */
  readonly nodesByProvider: Readonly<Record<string, number>>;
  /** Share (0..1) of the FLOPs that ran on {@link PlacementReport.provider}. */
  readonly share: number;
  /** Every node the profile lists, in the order it first ran. */
  readonly nodes: readonly PlacedNode[];
  /** Nodes that ran on another provider than {@link PlacementReport.provider}, most FLOPs first. */
  readonly fallbacks: readonly PlacedNode[];
  /** Convolutions whose weight shape was found neither in the profile nor in the model (counted 1 FLOP per output element). */
  readonly unresolved: readonly string[];
}

/** The fields of one ORT profiler event that this module reads. */
interface ProfileEvent {
  readonly cat?: string;
  readonly name?: string;
  readonly args?: {
    readonly op_name?: string;
    readonly provider?: string;
    readonly input_type_shape?: readonly Record<string, readonly number[]>[];
    readonly output_type_shape?: readonly Record<string, readonly number[]>[];
  };
}

const ORT_PROVIDER_NAMES: Readonly<Record<string, string>> = {
  cpu: 'CPUExecutionProvider',
  wasm: 'CPUExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  tensorrt: 'TensorrtExecutionProvider',
};

/**
 * ORT's name of an execution provider (`webgpu` -> `WebGpuExecutionProvider`);
 * a name that is already ORT's is returned as is.
 *
 * @public
 */
export function ortProviderName(provider: string): string {
  return ORT_PROVIDER_NAMES[provider] ?? provider;
}

function shapeOf(entry: Record<string, readonly number[]> | undefined): readonly number[] | undefined {
  if (!entry) return undefined;
  const shapes = Object.values(entry);
  return shapes.length === 1 && Array.isArray(shapes[0]) ? shapes[0] : undefined;
}

function product(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

const CONVOLUTIONS = new Set(['Conv', 'FusedConv', 'NhwcConv', 'NhwcFusedConv']);
const MATRIX_PRODUCTS = new Set(['MatMul', 'Gemm', 'FusedMatMul', 'FusedGemm', 'MatMulNBits', 'FusedMatMulActivation']);

/** The names under which a profiled node may appear in the model: itself, then with ORT's suffixes stripped. */
function candidateNames(name: string): string[] {
  const names = [name];
  const withoutToken = name.replace(/_token_\d+$/, '');
  if (withoutToken !== name) names.push(withoutToken);
  const parts = withoutToken.replace(/\/+$/, '').split('/');
  for (let end = parts.length - 1; end >= 1; end--)
    names.push(
      parts
        .slice(0, end)
        .join('/')
        .replace(/_token_\d+$/, ''),
    );
  return names;
}

/** The parts of a decoded ONNX model that weight shapes come from. */
interface DecodedModel {
  graph?: {
    node?: { name?: string; input?: string[] }[];
    initializer?: { name?: string; dims?: number[] }[];
    input?: { name?: string; type?: { tensorType?: { shape?: { dim?: { dimValue?: number }[] } } } }[];
  };
}

/**
 * Static shapes of each node's second input (a convolution's weight) by node
 * name, where it is an initializer or a graph input of static shape.
 */
function modelWeightShapes(model: OnnxModel | Uint8Array | undefined): Map<string, readonly number[]> {
  const shapes = new Map<string, readonly number[]>();
  if (!model) return shapes;
  const known = new Map<string, readonly number[]>();
  let nodes: readonly { name?: string | null; input?: readonly string[] | null }[];
  if (model instanceof OnnxModel) {
    for (const input of model.inputs) if (input.shape.every((dim) => typeof dim === 'number')) known.set(input.name, input.shape as number[]);
    for (const [name, tensor] of model.initializers) known.set(name, tensor.shape);
    nodes = model.graphProto.node;
  } else {
    const type = onnxType('ModelProto');
    const decoded = type.toObject(type.decode(model), { longs: Number, bytes: Array, defaults: false }) as DecodedModel;
    for (const input of decoded.graph?.input ?? []) {
      const dims = input.type?.tensorType?.shape?.dim ?? [];
      if (input.name && dims.length > 0 && dims.every((dim) => typeof dim.dimValue === 'number'))
        known.set(
          input.name,
          dims.map((dim) => dim.dimValue!),
        );
    }
    for (const initializer of decoded.graph?.initializer ?? []) if (initializer.name) known.set(initializer.name, initializer.dims ?? []);
    nodes = decoded.graph?.node ?? [];
  }
  for (const node of nodes) {
    const weight = node.input?.[1];
    const shape = weight === undefined ? undefined : known.get(weight);
    if (node.name && shape) shapes.set(node.name, shape);
  }
  return shapes;
}

/**
 * Reads an ORT profile (the JSON array `endProfiling` writes) into a
 * placement report. See the module's documentation for the FLOP rules.
 *
 * @param profile - the parsed profile: an array of trace events
 * @param provider - the provider the runner asked for (`webgpu` or ORT's name)
 * @param model - the model (compiled, or its ONNX bytes), for weight shapes a rewrite removed from the profile
 * @throws {@link ConfigError} when `profile` is not an array of events or holds no node events
 * @public
 */
export function placementFromProfile(profile: unknown, provider: string, model?: OnnxModel | Uint8Array): PlacementReport {
  if (!Array.isArray(profile)) throw new ConfigError(`placementFromProfile: expected an array of profiler events; found ${typeof profile}`);
  const weights = modelWeightShapes(model);
  const seen = new Set<string>();
  const nodes: PlacedNode[] = [];
  const unresolved: string[] = [];
  for (const event of profile as ProfileEvent[]) {
    if (event?.cat !== 'Node' || !event.name?.endsWith('_kernel_time') || !event.args?.provider) continue;
    const name = event.name.slice(0, -'_kernel_time'.length);
    if (seen.has(name)) continue;
    seen.add(name);
    const opType = event.args.op_name ?? '';
    const inputs = (event.args.input_type_shape ?? []).map(shapeOf);
    const outputs = (event.args.output_type_shape ?? []).map(shapeOf);
    const outputElements = outputs.reduce((sum, shape) => sum + (shape ? product(shape) : 0), 0);
    let flops = outputElements;
    if (CONVOLUTIONS.has(opType) || opType === 'ConvTranspose') {
      const output = outputs[0];
      const listed = inputs[1];
      const weight =
        listed && output && listed.length === output.length
          ? listed
          : candidateNames(name)
              .map((candidate) => weights.get(candidate))
              .find((shape) => shape !== undefined);
      if (weight && weight.length > 1) {
        const perOutput = product(weight) / weight[0]!;
        const elements = opType === 'ConvTranspose' ? product(inputs[0] ?? []) : product(output ?? []);
        flops = 2 * elements * perOutput;
      } else unresolved.push(name);
    } else if (MATRIX_PRODUCTS.has(opType)) {
      const a = inputs[0];
      const output = outputs[0];
      if (a && output && a.length > 0) {
        const rows = output.length >= 2 && a.length >= 2 ? output[output.length - 2]! : 1;
        const k = a.length >= 2 ? (a[a.length - 1]! * a[a.length - 2]!) / rows : a[0]!;
        flops = 2 * product(output) * k;
      }
    }
    nodes.push({ name, opType, provider: event.args.provider, flops });
  }
  if (nodes.length === 0) throw new ConfigError('placementFromProfile: expected kernel events (cat Node, name ending in _kernel_time); found none');
  const expected = ortProviderName(provider);
  const flopsByProvider: Record<string, number> = {};
  const nodesByProvider: Record<string, number> = {};
  let totalFlops = 0;
  for (const node of nodes) {
    flopsByProvider[node.provider] = (flopsByProvider[node.provider] ?? 0) + node.flops;
    nodesByProvider[node.provider] = (nodesByProvider[node.provider] ?? 0) + 1;
    totalFlops += node.flops;
  }
  return {
    provider: expected,
    totalFlops,
    flopsByProvider,
    nodesByProvider,
    share: totalFlops > 0 ? (flopsByProvider[expected] ?? 0) / totalFlops : 0,
    nodes,
    fallbacks: nodes.filter((node) => node.provider !== expected).sort((a, b) => b.flops - a.flops),
    unresolved,
  };
}

function formatFlops(flops: number): string {
  if (flops >= 1e9) return `${(flops / 1e9).toFixed(2)} GFLOP`;
  if (flops >= 1e6) return `${(flops / 1e6).toFixed(2)} MFLOP`;
  if (flops >= 1e3) return `${(flops / 1e3).toFixed(1)} kFLOP`;
  return `${flops} FLOP`;
}

/**
 * A short human-readable summary of a placement report: the share of FLOPs
 * per provider, then the nodes that fell back (most FLOPs first, at most
 * `limit`).
 *
 * @param report - from {@link placementFromProfile} or `Runner.placement`
 * @param label - what the graph is (for example `U-Net blocks 1-19`)
 * @param limit - how many fallen-back nodes to list (default 8)
 * @returns lines without trailing newlines
 * @public
 */
export function formatPlacement(report: PlacementReport, label: string, limit = 8): string[] {
  const nodes = Object.values(report.nodesByProvider).reduce((sum, count) => sum + count, 0);
  const providers = Object.entries(report.flopsByProvider)
    .sort((a, b) => b[1] - a[1])
    .map(([name, flops]) => `${name} ${((100 * flops) / (report.totalFlops || 1)).toFixed(2)}% (${report.nodesByProvider[name]} nodes)`);
  const lines = [`placement of ${label}: ${formatFlops(report.totalFlops)} in ${nodes} nodes; ${providers.join(', ')}`];
  if (report.fallbacks.length === 0) lines.push(`  every node ran on ${report.provider}`);
  else {
    lines.push(`  ${report.fallbacks.length} nodes fell back from ${report.provider}:`);
    for (const node of report.fallbacks.slice(0, limit)) lines.push(`    ${node.opType} ${node.name} on ${node.provider}: ${formatFlops(node.flops)}`);
    if (report.fallbacks.length > limit) lines.push(`    and ${report.fallbacks.length - limit} more`);
  }
  if (report.unresolved.length > 0) lines.push(`  weight shape unknown (counted 1 FLOP per output element): ${report.unresolved.join(', ')}`);
  return lines;
}
