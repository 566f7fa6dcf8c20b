// A TypeDoc plugin: the values of a preset table (an `as const` object whose
// entries satisfy a flags interface) take their doc comments from that
// interface, so that `ADM_PRESETS['256x256_diffusion_uncond'].image_size` says
// what `image_size` means instead of failing the "every export is documented"
// check. A preset entry's own comment (which model it is) is written in the
// source; only flag values without a comment inherit one.
import { Converter, ReflectionType } from 'typedoc';

/** Preset tables and the interface whose property docs their values take. */
const PRESET_TABLES = [{ table: ['@diffssl/unet', 'ADM_PRESETS'], flags: ['@diffssl/unet', 'GuidedDiffusionFlags'] }];

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const { table, flags } of PRESET_TABLES) {
      // Runs that leave the table's package out have nothing to do.
      if (!context.project.getChildByName(table[0])) continue;
      const tableReflection = context.project.getChildByName(table);
      const flagsReflection = context.project.getChildByName(flags);
      // A renamed table or interface must not silently turn this off.
      if (!tableReflection || !flagsReflection) throw new Error(`preset-flag-docs: ${table.join('.')} or ${flags.join('.')} is not in the documentation`);
      if (!(tableReflection.type instanceof ReflectionType)) throw new Error(`preset-flag-docs: ${table.join('.')} is not an object literal`);
      for (const preset of tableReflection.type.declaration.children ?? []) {
        if (!(preset.type instanceof ReflectionType)) continue;
        for (const flag of preset.type.declaration.children ?? []) {
          const documented = flagsReflection.getChildByName(flag.name);
          if (!flag.hasComment() && documented?.comment) flag.comment = documented.comment.clone();
        }
      }
    }
  });
}
