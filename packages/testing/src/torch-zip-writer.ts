/**
 * Writes PyTorch zip checkpoints the way `torch.save` lays them out
 * (`<name>/data.pkl`, `<name>/data/<key>`, `<name>/version`, stored records),
 * for tests and benchmarks of the reader. Only what a state dict needs.
 */
import { createWriteStream } from 'node:fs';
import { crc32 } from 'node:zlib';

/** One tensor to write: a storage and the view of it the state dict holds. */
export interface TensorRecord {
  storageType: 'FloatStorage' | 'HalfStorage' | 'BFloat16Storage' | 'DoubleStorage' | 'LongStorage' | 'IntStorage' | 'ByteStorage' | 'BoolStorage';
  /** Raw little-endian storage bytes. */
  bytes: Uint8Array;
  numel: number;
  offset: number;
  shape: number[];
  strides: number[];
}

const text = (value: string) => [...new TextEncoder().encode(value)];
const u32 = (value: number) => [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
const unicode = (value: string) => {
  const bytes = text(value);
  return [0x58, ...u32(bytes.length), ...bytes];
};
const int = (value: number) => [0x4a, ...u32(value)];
const tuple = (items: number[][]) => [0x28, ...items.flat(), 0x74];

/** The pickle of `{name: tensor}` (optionally nested under `wrapper`) referencing storages by index. */
export function statePickle(names: string[], records: TensorRecord[], wrapper?: string): Uint8Array {
  const entries = names.flatMap((name, index) => {
    const record = records[index]!;
    const persistentId = tuple([
      unicode('storage'),
      [0x63, ...text(`torch\n${record.storageType}\n`)],
      unicode(String(index)),
      unicode('cpu'),
      int(record.numel),
    ]);
    const args = [0x28, ...persistentId, 0x51, ...int(record.offset), ...tuple(record.shape.map(int)), ...tuple(record.strides.map(int)), 0x89, 0x4e, 0x74];
    return [...unicode(name), 0x63, ...text('torch._utils\n_rebuild_tensor_v2\n'), ...args, 0x52];
  });
  const dict = [0x7d, 0x28, ...entries, 0x75];
  const body = wrapper ? [0x7d, ...unicode(wrapper), ...dict, 0x73] : dict;
  return new Uint8Array([0x80, 2, ...body, 0x2e]);
}

/** The byte chunks of a stored (uncompressed) zip of the given records, in file order. */
export function* storedZipChunks(files: [string, Uint8Array][]): Generator<Uint8Array> {
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const nameBytes = new TextEncoder().encode(name);
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, nameBytes.length, true);
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
    yield data;
    central.push(new Uint8Array(header.buffer), nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  yield* central;
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(
    12,
    central.reduce((total, chunk) => total + chunk.length, 0),
    true,
  );
  end.setUint32(16, offset, true);
  yield new Uint8Array(end.buffer);
}

/** A stored zip of the given records, in memory. */
export function storedZip(files: Record<string, Uint8Array>): Uint8Array {
  const chunks = [...storedZipChunks(Object.entries(files))];
  const out = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let cursor = 0;
  for (const chunk of chunks) {
    out.set(chunk, cursor);
    cursor += chunk.length;
  }
  return out;
}

/** Writes a stored zip with the given records, streaming to `path`. */
export async function writeTorchZip(path: string, files: [string, Uint8Array][]): Promise<void> {
  const stream = createWriteStream(path);
  for (const chunk of storedZipChunks(files)) {
    if (!stream.write(chunk)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

/** Writes a state dict checkpoint. */
export async function writeStateDict(path: string, tensors: Record<string, TensorRecord>, wrapper?: string): Promise<void> {
  const names = Object.keys(tensors);
  const records = Object.values(tensors);
  await writeTorchZip(path, [
    ['archive/data.pkl', statePickle(names, records, wrapper)],
    ...records.map((record, index) => [`archive/data/${index}`, record.bytes] as [string, Uint8Array]),
    ['archive/version', new TextEncoder().encode('3\n')],
  ]);
}
