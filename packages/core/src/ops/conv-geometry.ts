import { ShapeError } from '../errors.js';
import { formatShape, isStaticDim, type Dim } from '../graph/dim.js';
import { expectPositiveInteger, pair } from '../graph/shape.js';

/** Stride, padding, dilation and groups of a 2-D convolution. */
export interface ConvGeometry {
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly groups: number;
}

/** User-facing convolution options (numbers apply to both axes). @public */
export interface Conv2dOptions {
  /** Stride (default 1). */
  stride?: number | readonly [number, number];
  /** Symmetric zero padding (default 0). */
  padding?: number | readonly [number, number];
  /** Dilation (default 1). */
  dilation?: number | readonly [number, number];
  /** Channel groups (default 1). */
  groups?: number;
}

/** Resolves and validates convolution options. */
export function resolveGeometry(opName: string, options: Conv2dOptions = {}): ConvGeometry {
  const stride = pair(options.stride ?? 1);
  const padding = pair(options.padding ?? 0);
  const dilation = pair(options.dilation ?? 1);
  const groups = options.groups ?? 1;
  stride.forEach((s) => expectPositiveInteger(opName, 'stride', s));
  dilation.forEach((d) => expectPositiveInteger(opName, 'dilation', d));
  expectPositiveInteger(opName, 'groups', groups);
  padding.forEach((p) => {
    if (!Number.isInteger(p) || p < 0) throw new ShapeError(`${opName}: expected padding to be a non-negative integer; found ${p}`);
  });
  return { stride, padding, dilation, groups };
}

/** Output size along one spatial axis. */
export function convOutputSize(opName: string, inputShape: readonly Dim[], axis: 0 | 1, kernel: number, geometry: ConvGeometry): number {
  const size = inputShape[2 + axis]!;
  if (!isStaticDim(size)) throw new ShapeError(`${opName}: expected static spatial sizes; found ${formatShape(inputShape)}`);
  const out = Math.floor((size + 2 * geometry.padding[axis] - geometry.dilation[axis] * (kernel - 1) - 1) / geometry.stride[axis]) + 1;
  if (out <= 0)
    throw new ShapeError(
      `${opName}: kernel ${kernel} (dilation ${geometry.dilation[axis]}) does not fit input ${formatShape(inputShape)} with padding ${geometry.padding[axis]}`,
    );
  return out;
}

/** ONNX attribute values for a geometry. */
export function onnxGeometry(geometry: ConvGeometry): { strides: number[]; pads: number[]; dilations: number[]; group: number } {
  const [ph, pw] = geometry.padding;
  return { strides: [...geometry.stride], pads: [ph, pw, ph, pw], dilations: [...geometry.dilation], group: geometry.groups };
}
