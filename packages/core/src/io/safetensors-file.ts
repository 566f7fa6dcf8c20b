import { open } from 'node:fs/promises';
import { FormatError, UnsupportedError } from '../errors.js';
import { dataFromBytes } from '../tensor/dtype.js';
import { HostTensor, shapeSize } from '../tensor/host-tensor.js';
import { checkHeaderLength, parseSafetensorsHeader, type SafetensorsFile } from './safetensors.js';

/** Options of {@link readSafetensorsFile}. @public */
export interface ReadSafetensorsFileOptions {
  /**
   * Called with each tensor right after it is read; the tensor it returns is
   * kept (for example a float16 cast), so the one read can be freed before the
   * next is read.
   */
  transform?: (name: string, tensor: HostTensor) => HostTensor;
  /** Called after each tensor is read, with the tensor bytes read so far and in all (for a progress display). */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
}

/** Largest single read (Node refuses reads of 2 GiB and more). */
const READ_CHUNK_BYTES = 1 << 30;

/**
 * Reads a safetensors file tensor by tensor with positional reads, each
 * tensor into its own buffer: files of any size (`fs.readFile` stops at
 * 2 GiB) and about one copy of the weights in memory. The header is
 * validated as by `readSafetensors`; tensors whose byte ranges overlap are
 * refused, so a small file cannot make the reader allocate more than the
 * file holds.
 *
 * @param path - the `.safetensors` file
 * @param options - an optional per-tensor `transform`, and a progress callback
 * @returns the tensors (in header order) and metadata
 * @throws {@link FormatError} for a malformed or truncated file; {@link UnsupportedError} for a tensor too large for one typed array
 * @example
 * ```ts
 * const { tensors } = await readSafetensorsFile('model.safetensors');
 * ```
 * @public
 */
export async function readSafetensorsFile(path: string, options: ReadSafetensorsFileOptions = {}): Promise<SafetensorsFile> {
  const handle = await open(path, 'r');
  try {
    const fileBytes = (await handle.stat()).size;
    if (fileBytes < 8) throw new FormatError(`safetensors: expected at least 8 bytes for the header length; found ${fileBytes} in ${path}`);
    const lengthBytes = new Uint8Array(8);
    await readFully(handle, lengthBytes, 0, path);
    const headerLength = checkHeaderLength(new DataView(lengthBytes.buffer).getBigUint64(0, true), fileBytes);
    const header = new Uint8Array(headerLength);
    await readFully(handle, header, 8, path);
    const dataStart = 8 + headerLength;
    const { entries, metadata } = parseSafetensorsHeader(header, fileBytes - dataStart);
    const ranges = [...entries].filter((entry) => entry.end > entry.begin).sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i]!.begin < ranges[i - 1]!.end) {
        throw new FormatError(
          `safetensors: tensors ${ranges[i - 1]!.name} and ${ranges[i]!.name} overlap ([${ranges[i - 1]!.begin}, ${ranges[i - 1]!.end}) and [${ranges[i]!.begin}, ${ranges[i]!.end}))`,
        );
      }
    }
    const tensors = new Map<string, HostTensor>();
    const totalBytes = entries.reduce((sum, entry) => sum + (entry.end - entry.begin), 0);
    let bytesRead = 0;
    for (const { name, dtype, shape, begin, end } of entries) {
      let buffer: ArrayBuffer;
      try {
        buffer = new ArrayBuffer(end - begin);
      } catch {
        throw new UnsupportedError(`safetensors: tensor ${name} of ${end - begin} bytes does not fit in one buffer`);
      }
      await readFully(handle, new Uint8Array(buffer), dataStart + begin, path);
      const tensor = new HostTensor(dtype, dataFromBytes(dtype, buffer, 0, shapeSize(shape)), shape);
      tensors.set(name, options.transform ? options.transform(name, tensor) : tensor);
      bytesRead += end - begin;
      options.onProgress?.(bytesRead, totalBytes);
    }
    return { tensors, metadata };
  } finally {
    await handle.close();
  }
}

async function readFully(handle: Awaited<ReturnType<typeof open>>, target: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(READ_CHUNK_BYTES, target.byteLength - done);
    const { bytesRead } = await handle.read(target, done, length, position + done);
    if (bytesRead === 0)
      throw new FormatError(
        `safetensors: ${path} ended at byte ${position + done}; expected ${target.byteLength - done} more bytes (truncated while reading?)`,
      );
    done += bytesRead;
  }
}
