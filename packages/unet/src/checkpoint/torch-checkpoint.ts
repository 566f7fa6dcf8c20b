import { readSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dataFromBytes, FormatError, HostTensor, readSafetensorsFile, UnsupportedError, type DataType } from '@diffssl/core';
import yauzl from 'yauzl';
import { PickleDict, restrictedUnpickle, type PickleValue, type StorageReference, type TensorReference } from './unpickler.js';

const STORAGE_DTYPES: Record<string, { dtype: DataType | 'bfloat16'; bytes: number }> = {
  FloatStorage: { dtype: 'float32', bytes: 4 },
  HalfStorage: { dtype: 'float16', bytes: 2 },
  BFloat16Storage: { dtype: 'bfloat16', bytes: 2 },
  DoubleStorage: { dtype: 'float64', bytes: 8 },
  LongStorage: { dtype: 'int64', bytes: 8 },
  IntStorage: { dtype: 'int32', bytes: 4 },
  ByteStorage: { dtype: 'uint8', bytes: 1 },
  BoolStorage: { dtype: 'bool', bytes: 1 },
};

const MAX_NESTING = 16;

function openZip(source: string | Uint8Array): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, zip?: yauzl.ZipFile) =>
      error || !zip ? reject(new FormatError(`checkpoint: not a readable zip archive: ${error?.message ?? 'unknown error'}`, { cause: error })) : resolve(zip);
    if (typeof source === 'string') yauzl.open(source, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, done);
    else yauzl.fromBuffer(Buffer.from(source.buffer, source.byteOffset, source.byteLength), { lazyEntries: true, validateEntrySizes: true }, done);
  });
}

function listEntries(zip: yauzl.ZipFile): Promise<Map<string, yauzl.Entry>> {
  return new Promise((resolve, reject) => {
    const entries = new Map<string, yauzl.Entry>();
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.set(entry.fileName, entry);
      zip.readEntry();
    });
    zip.on('end', () => resolve(entries));
    zip.on('error', (error: Error) => reject(new FormatError(`checkpoint: corrupt zip archive: ${error.message}`, { cause: error })));
    zip.readEntry();
  });
}

/**
 * Collects the tensors of a (possibly nested) state dict: `{'state_dict': {...}}`,
 * `{'model': {...}}`. Memoized pickles can share one dict under many keys, so
 * that a walk of a 1 KB file would visit billions of entries: the walk stops
 * with a `FormatError` after `budget` entries, and refuses cycles.
 */
function collectTensors(root: PickleValue, budget: number): Map<string, TensorReference> {
  const out = new Map<string, TensorReference>();
  const onPath = new Set<PickleDict>();
  let visited = 0;
  const walk = (dict: PickleDict, prefix: string, depth: number): void => {
    if (depth > MAX_NESTING) throw new FormatError(`checkpoint: state dict nested deeper than ${MAX_NESTING} levels`);
    if (onPath.has(dict)) throw new FormatError(`checkpoint: the state dict contains itself at '${prefix}'`);
    onPath.add(dict);
    for (const [key, item] of dict.entries) {
      if (++visited > budget) {
        throw new FormatError(
          `checkpoint: the state dict's nested dicts are shared so often that reading it would visit more than ${budget} entries for a pickle of its size; refusing it`,
        );
      }
      const name = prefix ? `${prefix}.${String(key)}` : String(key);
      if (item && typeof item === 'object' && (item as TensorReference).kind === 'tensor') out.set(name, item as TensorReference);
      else if (item instanceof PickleDict) walk(item, name, depth + 1);
    }
    onPath.delete(dict);
  };
  if (root instanceof PickleDict) walk(root, '', 0);
  return out;
}

/** Unwraps `{'state_dict': sd}` / `{'model': sd}` / `{'ema': sd}` containers that hold nothing else of tensor kind. */
function selectStateDict(root: PickleValue): PickleValue {
  if (!(root instanceof PickleDict)) throw new FormatError('checkpoint: the pickle does not hold a dict (expected a state dict)');
  const hasDirectTensors = [...root.entries.values()].some((v) => v && typeof v === 'object' && (v as TensorReference).kind === 'tensor');
  if (hasDirectTensors) return root;
  for (const key of ['state_dict', 'model', 'ema', 'model_state_dict', 'module']) {
    const nested = root.entries.get(key);
    if (nested instanceof PickleDict) return nested;
  }
  return root;
}

function bfloat16ToFloat32(bytes: Uint8Array): Float32Array {
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const out = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = halves[i]! << 16;
  return new Float32Array(out.buffer);
}

function toHostTensor(name: string, reference: TensorReference, storage: Uint8Array): HostTensor {
  const spec = STORAGE_DTYPES[reference.storage.storageType];
  if (!spec)
    throw new UnsupportedError(`checkpoint: tensor ${name} uses ${reference.storage.storageType}; supported: ${Object.keys(STORAGE_DTYPES).join(', ')}`);
  const { shape, strides, offset } = reference;
  if (shape.length !== strides.length) throw new FormatError(`checkpoint: tensor ${name} has ${shape.length} sizes but ${strides.length} strides`);
  let last = offset;
  for (let i = 0; i < shape.length; i++) if (shape[i]! > 0) last += (shape[i]! - 1) * strides[i]!;
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > 0 && last >= reference.storage.numel) {
    throw new FormatError(
      `checkpoint: tensor ${name} of shape [${shape.join(', ')}] at offset ${offset} reaches element ${last} of a storage of ${reference.storage.numel}`,
    );
  }
  if (!Number.isSafeInteger(size) || size > reference.storage.numel) {
    // Only an overlapping (stride-0) view holds more elements than its storage: materializing it could take far more memory than the file.
    throw new FormatError(
      `checkpoint: tensor ${name} of shape [${shape.join(', ')}] declares ${size} elements over a storage of ${reference.storage.numel}; overlapping views are not supported (save .contiguous() tensors)`,
    );
  }
  if (spec.dtype === 'bfloat16') {
    return new HostTensor('float32', bfloat16ToFloat32(storage), shape, strides, offset);
  }
  const dtype = spec.dtype;
  const data = dataFromBytes(dtype, storage.buffer, storage.byteOffset, storage.byteLength / spec.bytes);
  return new HostTensor(dtype, data, shape, strides, offset);
}

/** Options of {@link readTorchCheckpoint} and {@link loadCheckpoint}. @public */
export interface CheckpointReadOptions {
  /**
   * Called with each tensor as soon as it is read; the tensor it returns is
   * kept (for example a float16 cast), and the one read can be freed before
   * the next is read, so a converted model is never held twice.
   */
  transform?: (name: string, tensor: HostTensor) => HostTensor;
  /** Called after each storage (torch) or tensor (safetensors) is read, with the bytes read so far and in all (for a progress display). */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
}

/**
 * Reads the tensors of a PyTorch checkpoint in the zip format every torch >=
 * 1.6 writes (`archive/data.pkl` plus one record per storage). The pickle is
 * parsed by a restricted unpickler that executes nothing. Each storage is read
 * with positional reads straight into its own buffer and tensors are views of
 * it, so a checkpoint of any size is held in memory once. A state dict nested
 * under `state_dict`, `model`, `ema`, `model_state_dict` or `module` is found.
 * Small hostile files stay cheap: shared nested dicts are walked under a work
 * budget, and tensors may not declare more elements than their storage holds.
 *
 * @param source - a file path (read lazily) or the file's bytes
 * @param options - an optional per-tensor `transform`
 * @returns tensors by parameter name, in file order (float32, float16, float64, int64, int32, uint8, bool; bfloat16 is widened to float32)
 * @throws `FormatError` for a malformed, hostile or legacy file, `UnsafePickleError` for a pickle that asks for more than tensors
 * @public
 */
export async function readTorchCheckpoint(source: string | Uint8Array, options: CheckpointReadOptions = {}): Promise<Map<string, HostTensor>> {
  const head = typeof source === 'string' ? await readHead(source) : source.subarray(0, 4);
  if (head.byteLength >= 2 && head[0] === 0x80) {
    throw new FormatError(
      'checkpoint: this is a legacy (pre-1.6) torch checkpoint; re-save it with torch >= 1.6: `torch.save(torch.load(path), new_path)` (the zip format is the default)',
    );
  }
  if (!(head[0] === 0x50 && head[1] === 0x4b))
    throw new FormatError('checkpoint: not a torch zip checkpoint (no PK signature); expected a file written by torch.save');
  const fileSize = typeof source === 'string' ? (await stat(source)).size : source.byteLength;
  // No entry may claim more than this: torch stores records uncompressed, so a
  // legitimate record is never larger than the file; 8x leaves room for deflate.
  const entryLimit = Math.max(1024, fileSize * 8);
  const zip = await openZip(source);
  const handle = typeof source === 'string' ? await open(source, 'r') : undefined;
  try {
    const entries = await listEntries(zip);
    for (const entry of entries.values()) {
      if (entry.uncompressedSize > entryLimit)
        throw new FormatError(`checkpoint: entry ${entry.fileName} claims ${entry.uncompressedSize} bytes in a file of ${fileSize}`);
    }
    const pickleName = [...entries.keys()].find((name) => /^[^/]+\/data\.pkl$/.test(name));
    if (!pickleName) throw new FormatError('checkpoint: the archive has no <name>/data.pkl record');
    const root = pickleName.slice(0, -'data.pkl'.length);
    const reader: EntryReader = { zip, source: handle ?? (source as Uint8Array) };
    const pickle = await readEntry(reader, entries.get(pickleName)!, Math.min(entryLimit, 1 << 30));
    const references = collectTensors(selectStateDict(restrictedUnpickle(pickle)), 1024 + 2 * pickle.byteLength);
    // Each storage is dropped once its last tensor is made, so a transform can free memory as it goes.
    const remaining = new Map<string, number>();
    for (const reference of references.values()) remaining.set(reference.storage.key, (remaining.get(reference.storage.key) ?? 0) + 1);
    const storages = new Map<string, Uint8Array>();
    const out = new Map<string, HostTensor>();
    const storageBytes = new Map<string, number>();
    for (const reference of references.values())
      storageBytes.set(reference.storage.key, entries.get(`${root}data/${reference.storage.key}`)?.uncompressedSize ?? 0);
    const totalBytes = [...storageBytes.values()].reduce((sum, bytes) => sum + bytes, 0);
    let bytesRead = 0;
    for (const [name, reference] of references) {
      const storage = reference.storage;
      let bytes = storages.get(storage.key);
      if (!bytes) {
        bytes = await loadStorage(reader, entries, root, storage);
        storages.set(storage.key, bytes);
        bytesRead += bytes.byteLength;
        options.onProgress?.(bytesRead, totalBytes);
      }
      const left = remaining.get(storage.key)! - 1;
      remaining.set(storage.key, left);
      if (left === 0) storages.delete(storage.key);
      const tensor = toHostTensor(name, reference, bytes);
      out.set(name, options.transform ? options.transform(name, tensor) : tensor);
    }
    return out;
  } finally {
    zip.close();
    await handle?.close();
  }
}

/** Where entry bytes come from: the zip (for its directory and compressed entries) and the file or bytes (for positional reads). */
interface EntryReader {
  zip: yauzl.ZipFile;
  source: FileHandle | Uint8Array;
}

/** Largest single positional read (Node refuses reads of 2 GiB and more). */
const READ_CHUNK_BYTES = 1 << 30;
/** Reads up to this size are synchronous (see readAt). */
const SYNC_READ_BYTES = 1 << 17;
/** Entries up to this size are read together with their local header in one read. */
const SMALL_ENTRY_BYTES = 1 << 16;
/** Room guessed for a local header's extra field (torch pads records to 64-byte alignment there). */
const EXTRA_FIELD_GUESS = 128;

/**
 * Reads up to `target.byteLength` bytes at `position`; returns how many there
 * were (fewer only at the end). Small reads are synchronous: an asynchronous
 * read costs a thread-pool round trip, which dominates for the many tiny
 * records of some checkpoints.
 */
async function readAt(source: FileHandle | Uint8Array, target: Uint8Array, position: number): Promise<number> {
  if (source instanceof Uint8Array) {
    const available = source.subarray(Math.min(position, source.byteLength), Math.min(position + target.byteLength, source.byteLength));
    target.set(available);
    return available.byteLength;
  }
  if (target.byteLength <= SYNC_READ_BYTES) return readSync(source.fd, target, 0, target.byteLength, position);
  let done = 0;
  while (done < target.byteLength) {
    const { bytesRead } = await source.read(target, done, Math.min(READ_CHUNK_BYTES, target.byteLength - done), position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Reads one zip entry into a new buffer of exactly its size: stored entries
 * (what torch writes) with positional reads (a small entry and its local
 * header in one read), compressed ones through yauzl's inflating stream.
 */
async function readEntry(reader: EntryReader, entry: yauzl.Entry, limit: number): Promise<Uint8Array> {
  const size = entry.uncompressedSize;
  if (size > limit) throw new FormatError(`checkpoint: entry ${entry.fileName} holds ${size} bytes; at most ${limit} expected`);
  if (entry.compressionMethod !== 0) return readCompressedEntry(reader.zip, entry);
  if (entry.compressedSize !== size) throw new FormatError(`checkpoint: stored entry ${entry.fileName} has ${entry.compressedSize} stored bytes for ${size}`);
  const headerStart = entry.relativeOffsetOfLocalHeader;
  const small = size <= SMALL_ENTRY_BYTES;
  const head = new Uint8Array(small ? 30 + entry.fileNameLength + EXTRA_FIELD_GUESS + size : 30);
  const got = await readAt(reader.source, head, headerStart);
  const view = new DataView(head.buffer);
  if (got < 30 || view.getUint32(0, true) !== 0x04034b50)
    throw new FormatError(`checkpoint: entry ${entry.fileName} has no local header at byte ${headerStart}`);
  const dataOffset = 30 + view.getUint16(26, true) + view.getUint16(28, true);
  if (small && dataOffset + size <= got) return head.slice(dataOffset, dataOffset + size);
  const out = new Uint8Array(size);
  if ((await readAt(reader.source, out, headerStart + dataOffset)) !== size) throw new FormatError(`checkpoint: entry ${entry.fileName} is truncated`);
  return out;
}

function readCompressedEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error || !stream) return reject(new FormatError(`checkpoint: cannot read ${entry.fileName}: ${error?.message}`, { cause: error }));
      const out = new Uint8Array(entry.uncompressedSize);
      let offset = 0;
      stream.on('data', (chunk: Buffer) => {
        if (offset + chunk.byteLength > out.byteLength) {
          stream.destroy();
          return reject(new FormatError(`checkpoint: entry ${entry.fileName} is longer than its header says`));
        }
        out.set(chunk, offset);
        offset += chunk.byteLength;
      });
      stream.on('error', (streamError: Error) =>
        reject(new FormatError(`checkpoint: cannot read ${entry.fileName}: ${streamError.message}`, { cause: streamError })),
      );
      stream.on('end', () => (offset === out.byteLength ? resolve(out) : reject(new FormatError(`checkpoint: entry ${entry.fileName} is truncated`))));
    });
  });
}

async function loadStorage(reader: EntryReader, entries: Map<string, yauzl.Entry>, root: string, storage: StorageReference): Promise<Uint8Array> {
  const entry = entries.get(`${root}data/${storage.key}`);
  if (!entry) throw new FormatError(`checkpoint: storage record data/${storage.key} is missing from the archive`);
  const spec = STORAGE_DTYPES[storage.storageType];
  if (!spec) throw new UnsupportedError(`checkpoint: storage type ${storage.storageType} is not supported`);
  const expected = storage.numel * spec.bytes;
  if (entry.uncompressedSize !== expected) {
    throw new FormatError(
      `checkpoint: storage data/${storage.key} holds ${entry.uncompressedSize} bytes; ${storage.numel} ${storage.storageType} elements need ${expected}`,
    );
  }
  return readEntry(reader, entry, expected);
}

async function readHead(path: string): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(4);
    await handle.read(buffer, 0, 4, 0);
    return buffer;
  } finally {
    await handle.close();
  }
}

/**
 * Loads weights from a `.pt`/`.pth` (torch zip) or `.safetensors` file,
 * tensor by tensor with positional reads (files over 2 GiB included), so that
 * memory holds about one copy of the weights.
 *
 * @param path - the file
 * @param options - an optional per-tensor `transform` (for example a cast to float16 as each tensor is read)
 * @returns tensors by name
 * @throws `FormatError` for an unknown extension or a malformed file
 * @public
 */
export async function loadCheckpoint(path: string, options: CheckpointReadOptions = {}): Promise<Map<string, HostTensor>> {
  if (/\.safetensors$/i.test(path)) return (await readSafetensorsFile(path, options)).tensors;
  if (/\.(pt|pth|bin|ckpt)$/i.test(path)) return readTorchCheckpoint(path, options);
  throw new FormatError(`loadCheckpoint: expected a .pt, .pth or .safetensors file; found ${path}`);
}
