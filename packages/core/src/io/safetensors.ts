import { FormatError, DTypeError } from '../errors.js';
import { bytesPerElement, dataFromBytes, type DataType } from '../tensor/dtype.js';
import { HostTensor, shapeSize } from '../tensor/host-tensor.js';

/** safetensors dtype names and the host data types they map to. */
const SAFETENSORS_TO_DATA_TYPE: Readonly<Record<string, DataType>> = {
  F32: 'float32',
  F64: 'float64',
  F16: 'float16',
  I32: 'int32',
  I64: 'int64',
  U8: 'uint8',
  I8: 'int8',
  BOOL: 'bool',
};

const DATA_TYPE_TO_SAFETENSORS: Readonly<Record<DataType, string>> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  int8: 'I8',
  bool: 'BOOL',
};

/** Largest JSON header this reader accepts (the format's own limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * The contents of a safetensors file: named tensors and string metadata.
 *
 * @public
 */
export interface SafetensorsFile {
  /** Tensors by name, in file order. Views over the input bytes where alignment allows. */
  tensors: Map<string, HostTensor>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
}

/**
 * Parses a safetensors buffer (8-byte little-endian header length, JSON
 * header, raw little-endian data). Every offset, shape and dtype is validated
 * against the buffer before any tensor is created.
 *
 * @param bytes - the whole file
 * @returns the tensors (zero-copy views where aligned) and metadata
 * @throws {@link FormatError} when the bytes are not a valid safetensors file
 * @public
 */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) {
    throw new FormatError(`safetensors: expected at least 8 bytes for the header length; found ${bytes.byteLength}`);
  }
  const headerEnd = 8 + checkHeaderLength(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true), bytes.byteLength);
  const { entries, metadata } = parseSafetensorsHeader(bytes.subarray(8, headerEnd), bytes.byteLength - headerEnd);
  const tensors = new Map<string, HostTensor>();
  for (const { name, dtype, shape, begin } of entries) {
    const data = dataFromBytes(dtype, bytes.buffer, bytes.byteOffset + headerEnd + begin, shapeSize(shape));
    tensors.set(name, new HostTensor(dtype, data, shape));
  }
  return { tensors, metadata };
}

/** One tensor of a safetensors header, validated against the data section. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: DataType;
  readonly shape: number[];
  /** Byte range in the data section. */
  readonly begin: number;
  readonly end: number;
}

/**
 * Checks the header length read from the first 8 bytes against the file size.
 *
 * @returns the header length in bytes
 * @throws {@link FormatError} when it does not fit
 */
export function checkHeaderLength(headerLength: bigint, fileBytes: number): number {
  if (headerLength > BigInt(Math.max(0, Math.min(MAX_HEADER_BYTES, fileBytes - 8)))) {
    throw new FormatError(`safetensors: header length ${headerLength} does not fit in a file of ${fileBytes} bytes`);
  }
  return Number(headerLength);
}

/**
 * Parses and validates a safetensors JSON header: every dtype, shape and
 * byte range is checked against the size of the data section.
 *
 * @param header - the header bytes (UTF-8 JSON)
 * @param dataBytes - size of the data section that follows it
 * @throws {@link FormatError} for anything malformed
 */
export function parseSafetensorsHeader(header: Uint8Array, dataBytes: number): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(header));
  } catch (cause) {
    throw new FormatError('safetensors: the header is not valid UTF-8 JSON', { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FormatError(`safetensors: expected the header to be a JSON object; found ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
  }
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null) throw new FormatError('safetensors: __metadata__ must be an object of strings');
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') throw new FormatError(`safetensors: __metadata__.${key} must be a string; found ${typeof value}`);
        metadata[key] = value;
      }
      continue;
    }
    entries.push(parseEntry(name, entry, dataBytes));
  }
  return { entries, metadata };
}

function parseEntry(name: string, entry: unknown, dataBytes: number): SafetensorsEntry {
  if (typeof entry !== 'object' || entry === null) throw new FormatError(`safetensors: entry ${name} must be an object`);
  const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const dataType = typeof dtype === 'string' ? SAFETENSORS_TO_DATA_TYPE[dtype] : undefined;
  if (dataType === undefined) {
    throw new FormatError(`safetensors: tensor ${name} has dtype ${String(dtype)}; supported: ${Object.keys(SAFETENSORS_TO_DATA_TYPE).join(', ')}`);
  }
  if (!Array.isArray(shape) || shape.length > 32 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new FormatError(`safetensors: tensor ${name} has shape ${JSON.stringify(shape)}; expected at most 32 non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw new FormatError(`safetensors: tensor ${name} has data_offsets ${JSON.stringify(offsets)}; expected [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  const byteLength = size * bytesPerElement(dataType);
  if (begin > end || end > dataBytes || end - begin !== byteLength) {
    throw new FormatError(
      `safetensors: tensor ${name} of dtype ${String(dtype)} and shape [${(shape as number[]).join(', ')}] needs ${byteLength} bytes; data_offsets [${begin}, ${end}] in a data section of ${dataBytes} bytes`,
    );
  }
  return { name, dtype: dataType, shape: shape as number[], begin, end };
}

/**
 * Serializes tensors to the safetensors format (tensors in insertion order,
 * data contiguous, header padded with spaces to a multiple of 8 bytes).
 *
 * @param tensors - named tensors (a Map or a plain object)
 * @param metadata - optional `__metadata__` strings
 * @returns the file bytes
 * @throws {@link DTypeError} for a tensor whose dtype safetensors cannot hold
 * @public
 */
export function writeSafetensors(tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const contiguous = entries.map(([name, tensor]) => {
    const code = DATA_TYPE_TO_SAFETENSORS[tensor.dtype];
    if (code === undefined) throw new DTypeError(`writeSafetensors: tensor ${name} has dtype ${tensor.dtype}, which safetensors cannot hold`);
    const dense = tensor.contiguous();
    const byteLength = shapeSize(tensor.shape) * bytesPerElement(tensor.dtype);
    header[name] = { dtype: code, shape: tensor.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
    return dense;
  });
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const withPadding = new Uint8Array(padded).fill(0x20);
    withPadding.set(json);
    json = withPadding;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let cursor = 8 + json.byteLength;
  for (const dense of contiguous) {
    const bytes = new Uint8Array(
      dense.data.buffer,
      dense.data.byteOffset + dense.offset * dense.data.BYTES_PER_ELEMENT,
      dense.size * dense.data.BYTES_PER_ELEMENT,
    );
    out.set(bytes, cursor);
    cursor += bytes.byteLength;
  }
  return out;
}
