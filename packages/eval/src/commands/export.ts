import type { Command } from 'commander';
import { exportClassifier } from '../export/export.js';
import { loadSavedModel } from '../pipeline/saved-model.js';

/** `diffssl export`: a trained model as one standalone ONNX inference model. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      'export a trained model (U-Net up to its deepest block plus the head, or the whole two-pass DifFeed model) as one ONNX model: images, noise and timesteps in, logits out; with a JSON sidecar',
    )
    .requiredOption('--model <dir>', 'the folder diffssl train wrote (or its model.safetensors)')
    .requiredOption('--out <model.onnx>', 'the ONNX file to write (the sidecar gets the same name with .json)')
    .action(async (flags: { model: string; out: string }) => {
      const { model, settings, unet } = await loadSavedModel(flags.model);
      const channels = unet ? unet.unet.info.inChannels : 3;
      const size = unet ? unet.unet.info.imageSize : settings.imageShape![1];
      const written = await exportClassifier({
        model,
        path: flags.out,
        protocol: settings.model.protocol,
        classNames: settings.classNames,
        imageSize: size,
        channels,
        noiseSeed: settings.noiseSeed,
        settings: { ...settings.model, training: settings.training },
      });
      process.stdout.write(`wrote ${written.onnx} and ${written.json}\n`);
    });
}
