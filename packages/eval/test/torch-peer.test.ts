/**
 * The PyTorch peer of `pnpm bench:peers` (bench/peers/torch_peer.py) against
 * the reference fixtures, so that the bench compares us with a peer that
 * computes what the reference computes (not with our own reading of it).
 * Runs where a Python imports torch (Debian's python3-torch); elsewhere one
 * skip line.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EMBEDDED_MODEL, fixturePath } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';

const peer = fileURLToPath(new URL('../bench/peers/torch_peer.py', import.meta.url));
const python = ['python3', '/usr/bin/python3'].find((candidate) => spawnSync(candidate, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
if (!python) console.log('torch peer: skipped (no python3 imports torch; apt-get install python3-torch libopenblas0-pthread to run it)');

interface Worst {
  worst: number;
  worst_tensor: string;
  tensors: number;
}

describe.skipIf(!python)('torch_peer.py selfcheck (the bench:peers PyTorch side)', () => {
  it('reproduces every U-Net block of both fixture checkpoints, and the attention and DifFormer steps (logits, loss, gradients, parameters after SGD)', () => {
    const directory = fixturePath('heads.safetensors').replace(/heads\.safetensors$/, '');
    const output = execFileSync(python!, [peer, 'selfcheck', directory, `adm-fm28=${EMBEDDED_MODEL.checkpoint}`, '--threads', '2'], {
      encoding: 'utf8',
    });
    const results = JSON.parse(output.trim().split('\n').pop()!) as Record<string, Worst>;
    // 19 blocks x 3 timesteps; 37 blocks x 3 timesteps; every tensor of both head cases.
    expect(results['adm-fm28']!.tensors).toBe(57);
    expect(results['adm-37block-random']!.tensors).toBe(111);
    expect(results.attention!.tensors).toBeGreaterThanOrEqual(40);
    expect(results.difformer!.tensors).toBeGreaterThanOrEqual(60);
    for (const name of ['adm-fm28', 'attention', 'difformer'])
      expect(results[name]!.worst, `${name}: ${results[name]!.worst_tensor}`).toBeLessThanOrEqual(1e-4);
    // The random 37-block model at 32x32 has a 1x1 middle block whose GroupNorm normalizes groups of two values: float32
    // rounding is amplified there (the peer run in float64 lands 4.3e-4 from the float32 fixture, float32 2.6e-4).
    expect(results['adm-37block-random']!.worst, results['adm-37block-random']!.worst_tensor).toBeLessThanOrEqual(1e-3);
  });
});
