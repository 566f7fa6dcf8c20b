import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { EMBEDDED_MODEL } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { loadUNet, unetSetupLog, type UNetLoadProgress } from './unet-source.js';

describe('U-Net loading progress', () => {
  it('loadUNet reports the bytes read and hashed, up to twice the file size, and the identity is the file SHA-256', async () => {
    const events: UNetLoadProgress[] = [];
    const loaded = await loadUNet({
      checkpoint: EMBEDDED_MODEL.checkpoint,
      config: EMBEDDED_MODEL.flagsFile,
      onProgress: (event) => events.push({ ...event }),
    });
    const size = statSync(EMBEDDED_MODEL.checkpoint).size;
    expect(events[0]).toEqual({ done: 0, total: 2 * size });
    expect(events.at(-1)).toEqual({ done: 2 * size, total: 2 * size });
    expect(events.length).toBeGreaterThan(4);
    for (let i = 1; i < events.length; i++) expect(events[i]!.done).toBeGreaterThanOrEqual(events[i - 1]!.done);
    expect(loaded.identity).toBe(`sha256:${createHash('sha256').update(readFileSync(EMBEDDED_MODEL.checkpoint)).digest('hex')}`);
    expect(loaded.unet.blocks).toHaveLength(19);
  });

  it("unetSetupLog turns createFeatureExtractor's setup steps into status lines, reading once", () => {
    const lines: string[] = [];
    const log = unetSetupLog((line) => lines.push(line))!;
    log({ stage: 'read', bytesRead: 0, totalBytes: 0 });
    log({ stage: 'read', bytesRead: 10, totalBytes: 20 });
    log({ stage: 'build' });
    log({ stage: 'save', path: '/cache/unet-1' });
    log({ stage: 'session' });
    log({ stage: 'ready', seconds: 12.34, fromCache: false });
    log({ stage: 'hash' });
    log({ stage: 'cached', path: '/cache/unet-1' });
    log({ stage: 'ready', seconds: 0.5, fromCache: true });
    expect(lines).toEqual([
      'U-Net model: reading the checkpoint',
      'U-Net model: building the ONNX graph',
      'U-Net model: writing the compiled model to /cache/unet-1',
      'U-Net model: ONNX Runtime is loading and optimizing the model',
      'U-Net model: ready in 12.3 s',
      'U-Net model: hashing the weights for the compiled-model cache key',
      'U-Net model: reusing the compiled model cached in /cache/unet-1',
      'U-Net model: ready in 0.5 s (from the cache)',
    ]);
    expect(unetSetupLog(undefined)).toBeUndefined();
  });
});
