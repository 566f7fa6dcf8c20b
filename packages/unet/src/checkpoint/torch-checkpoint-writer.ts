// Writes state dicts as PyTorch zip checkpoints, laid out as `torch.save`
// lays them out, so that `torch.load` (weights_only included) reads them.
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { ConfigError, publishAtomically, temporarySibling, UnsupportedError, type DataType, type HostTensor } from '@diffssl/core';

const STORAGE_TYPES: Partial<Record<DataType, string>> = {
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  float64: 'DoubleStorage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** torch.save aligns each record's data to 64 bytes through the local header's extra field. */
const ALIGNMENT = 64;
const ZIP32_LIMIT = 0xffffffff;

const encoder = new TextEncoder();
const ascii = (value: string) => [...encoder.encode(value)];
const u32 = (value: number) => [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];

/** Pickle protocol 2 building blocks. */
const pickle = {
  unicode: (value: string) => {
    const bytes = ascii(value);
    return [0x58, ...u32(bytes.length), ...bytes];
  },
  /** BININT for signed 32-bit values, LONG1 beyond. */
  int: (value: number) => {
    if (value >= -(2 ** 31) && value < 2 ** 31) return [0x4a, ...u32(value >>> 0)];
    let big = BigInt(value);
    const bytes: number[] = [];
    do {
      bytes.push(Number(big & 0xffn));
      big >>= 8n;
    } while (big !== 0n && big !== -1n);
    if ((bytes[bytes.length - 1]! & 0x80) !== (value < 0 ? 0x80 : 0)) bytes.push(value < 0 ? 0xff : 0);
    return [0x8a, bytes.length, ...bytes];
  },
  tuple: (items: number[][]) => [0x28, ...items.flat(), 0x74],
  global: (module: string, name: string) => [0x63, ...ascii(`${module}\n${name}\n`)],
  /** `collections.OrderedDict()`. */
  orderedDict: () => [0x63, ...ascii('collections\nOrderedDict\n'), 0x29, 0x52],
};

/** One tensor as the pickle refers to it: its storage record and its view. */
interface StoredTensor {
  name: string;
  storageType: string;
  bytes: Uint8Array;
  shape: readonly number[];
}

function storedTensors(tensors: ReadonlyMap<string, HostTensor>): StoredTensor[] {
  return [...tensors].map(([name, tensor]) => {
    const storageType = STORAGE_TYPES[tensor.dtype];
    if (!storageType)
      throw new UnsupportedError(
        `torch checkpoint: ${name} has dtype ${tensor.dtype}, which has no torch storage here (${Object.keys(STORAGE_TYPES).join(', ')})`,
      );
    const dense = tensor.contiguous();
    const width = dense.data.BYTES_PER_ELEMENT;
    return {
      name,
      storageType,
      shape: dense.shape,
      bytes: new Uint8Array(dense.data.buffer, dense.data.byteOffset + dense.offset * width, dense.size * width),
    };
  });
}

/** The pickle of an OrderedDict of `torch._utils._rebuild_tensor_v2` calls, storage i for tensor i. */
function statePickle(tensors: readonly StoredTensor[]): Uint8Array {
  const body: number[] = [0x80, 2, ...pickle.orderedDict(), 0x28];
  tensors.forEach((tensor, index) => {
    const strides = tensor.shape.map((_, axis) => tensor.shape.slice(axis + 1).reduce((a, b) => a * b, 1));
    const numel = tensor.shape.reduce((a, b) => a * b, 1);
    const persistentId = pickle.tuple([
      pickle.unicode('storage'),
      pickle.global('torch', tensor.storageType),
      pickle.unicode(String(index)),
      pickle.unicode('cpu'),
      pickle.int(numel),
    ]);
    const args = pickle.tuple([
      [...persistentId, 0x51],
      pickle.int(0),
      pickle.tuple(tensor.shape.map(pickle.int)),
      pickle.tuple(strides.map(pickle.int)),
      [0x89],
      pickle.orderedDict(),
    ]);
    body.push(...pickle.unicode(tensor.name), ...pickle.global('torch._utils', '_rebuild_tensor_v2'), ...args, 0x52);
  });
  body.push(0x75, 0x2e);
  return new Uint8Array(body);
}

/** The byte chunks of a stored (uncompressed) zip whose records' data start at multiples of 64 bytes. */
function* zipChunks(records: readonly (readonly [string, Uint8Array])[]): Generator<Uint8Array> {
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of records) {
    const nameBytes = encoder.encode(name);
    const crc = crc32(data);
    // Extra field 'FB' (as torch's writer) padding the data start to the alignment.
    const padding = (ALIGNMENT - ((offset + 30 + nameBytes.length + 4) % ALIGNMENT)) % ALIGNMENT;
    const extra = new Uint8Array(4 + padding);
    extra.set([0x46, 0x42, padding & 0xff, padding >>> 8]);
    extra.fill(0x5a, 4);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, nameBytes.length, true);
    local.setUint16(28, extra.length, true);
    const header = new DataView(new ArrayBuffer(46));
    header.setUint32(0, 0x02014b50, true);
    header.setUint16(4, 20, true);
    header.setUint16(6, 20, true);
    header.setUint32(16, crc, true);
    header.setUint32(20, data.length, true);
    header.setUint32(24, data.length, true);
    header.setUint16(28, nameBytes.length, true);
    header.setUint32(42, offset, true);
    yield new Uint8Array(local.buffer);
    yield nameBytes;
    yield extra;
    yield data;
    central.push(new Uint8Array(header.buffer), nameBytes);
    offset += 30 + nameBytes.length + extra.length + data.length;
  }
  const centralSize = central.reduce((total, chunk) => total + chunk.length, 0);
  if (offset + centralSize > ZIP32_LIMIT || records.length > 0xffff)
    throw new UnsupportedError(
      `torch checkpoint: ${offset} bytes in ${records.length} records need zip64, which this writer does not write; save as .safetensors`,
    );
  yield* central;
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, records.length, true);
  end.setUint16(10, records.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  yield new Uint8Array(end.buffer);
}

function checkpointRecords(tensors: ReadonlyMap<string, HostTensor>, archive: string): [string, Uint8Array][] {
  if (!/^[A-Za-z0-9_.-]+$/.test(archive)) throw new ConfigError(`torch checkpoint: archive name must be letters, digits, '_', '.' and '-'; found '${archive}'`);
  const stored = storedTensors(tensors);
  const total = stored.reduce((sum, tensor) => sum + tensor.bytes.length, 0);
  if (total > ZIP32_LIMIT)
    throw new UnsupportedError(`torch checkpoint: ${total} bytes of tensors need zip64, which this writer does not write; save as .safetensors`);
  return [
    [`${archive}/data.pkl`, statePickle(stored)],
    [`${archive}/byteorder`, encoder.encode('little')],
    ...stored.map((tensor, index) => [`${archive}/data/${index}`, tensor.bytes] as [string, Uint8Array]),
    [`${archive}/version`, encoder.encode('3\n')],
  ];
}

/**
 * A state dict as the bytes of a PyTorch zip checkpoint, as
 * `torch.save(state_dict, path)` writes it: `archive/data.pkl` (an
 * OrderedDict of `torch._utils._rebuild_tensor_v2` calls, pickle protocol 2),
 * one storage record per tensor (`archive/data/<i>`, 64-byte aligned),
 * `archive/byteorder` and `archive/version`. `torch.load` reads it, with
 * `weights_only=True` too; {@link loadCheckpoint} reads it back exactly.
 *
 * @param tensors - tensors by state-dict name (float32, float16, float64, int64, int32, uint8, bool)
 * @param archive - the records' folder (torch uses the file name without extension; default `archive`)
 * @throws `UnsupportedError` for another dtype, or more than 4 GiB (zip64 is not written)
 * @public
 */
export function torchCheckpointBytes(tensors: ReadonlyMap<string, HostTensor>, archive = 'archive'): Uint8Array {
  const chunks = [...zipChunks(checkpointRecords(tensors, archive))];
  const out = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let cursor = 0;
  for (const chunk of chunks) {
    out.set(chunk, cursor);
    cursor += chunk.length;
  }
  return out;
}

/**
 * Writes a state dict as a PyTorch zip checkpoint ({@link torchCheckpointBytes}),
 * streaming to a temporary file published over `path` when complete (core's
 * `publishAtomically`: readers see the old file or the new one, never a part).
 *
 * @param path - the `.pt` file to write
 * @param tensors - tensors by state-dict name
 * @throws as {@link torchCheckpointBytes}, and the file system's errors
 * @public
 */
export async function writeTorchCheckpoint(path: string, tensors: ReadonlyMap<string, HostTensor>): Promise<void> {
  const records = checkpointRecords(tensors, 'archive');
  const temporary = temporarySibling(path);
  const stream = createWriteStream(temporary);
  const failed = new Promise<never>((_, reject) => stream.once('error', reject));
  failed.catch(() => {});
  try {
    for (const chunk of zipChunks(records)) {
      if (!stream.write(chunk)) await Promise.race([new Promise<void>((resolve) => stream.once('drain', () => resolve())), failed]);
    }
    await Promise.race([new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve()))), failed]);
  } catch (error) {
    stream.destroy();
    await rm(temporary, { force: true });
    throw error;
  }
  await publishAtomically(temporary, path);
}
